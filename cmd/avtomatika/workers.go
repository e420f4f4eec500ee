package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func workersList() *command {
	return &command{
		name: "list", minArgs: 0, maxArgs: 0,
		summary: "list registered workers",
		help:    `--json prints the workers as the API returns them (an array).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, _ []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				workers, err := c.Workers(ctx)
				if err != nil {
					return err
				}
				if a.g.json {
					if workers == nil {
						workers = []protocol.WorkerInfo{}
					}
					return a.printJSON(workers)
				}
				if len(workers) == 0 {
					fmt.Fprintln(a.stderr, "No workers registered.")
					return nil
				}
				t := newTable(a.stdout, "ID", "TYPE", "STATUS", "LOAD", "REPUTATION", "SKILLS", "LAST SEEN")
				for _, w := range workers {
					load := strconv.Itoa(w.Load)
					if w.MaxConcurrent > 0 {
						load += "/" + strconv.Itoa(w.MaxConcurrent)
					}
					skills := make([]string, len(w.Skills))
					for i, s := range w.Skills {
						skills[i] = s.Name
					}
					t.row(w.WorkerID, w.WorkerType, w.Status, load, strconv.FormatFloat(w.Reputation, 'f', 2, 64),
						strings.Join(skills, ","), formatTime(&w.LastSeen))
				}
				return t.flush()
			}
		},
	}
}
