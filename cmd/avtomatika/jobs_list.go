package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// maxPage is the largest page the server serves.
const maxPage = 500

// statuses are the job statuses --status accepts.
func statuses() []string {
	return []string{
		string(protocol.StatusPending), string(protocol.StatusRunning),
		string(protocol.StatusWaitingForWorker), string(protocol.StatusWaitingForHuman),
		string(protocol.StatusWaitingParallel), string(protocol.StatusWaitingForSubJob),
		string(protocol.StatusFinished), string(protocol.StatusFailed), string(protocol.StatusCancelled),
		string(protocol.StatusError), string(protocol.StatusQuarantined),
	}
}

func jobsList() *command {
	return &command{
		name: "list", minArgs: 0, maxArgs: 0,
		summary: "list your jobs, newest first",
		help: `One page is listed (--limit jobs, the server's default otherwise); when
there are more, the cursor of the next page is printed on stderr. --all
walks every page. --json prints {"jobs": [...], "next_cursor": "..."}.

Statuses: ` + wrapWords(strings.Join(statuses(), ", "), len("Statuses: ")),
		setup: func(fs *flag.FlagSet) action {
			status := fs.String("status", "", "only jobs with this `STATUS`, e.g. running or finished")
			bp := fs.String("blueprint", "", "only jobs of this blueprint `NAME`")
			limit := fs.Int("limit", 0, fmt.Sprintf("page size `N`, 1 to %d (default: the server's)", maxPage))
			cursor := fs.String("cursor", "", "start at this page `CURSOR` (from a previous listing)")
			all := fs.Bool("all", false, "list every page")
			return func(ctx context.Context, a *app, _ []string) error {
				path := []string{"jobs", "list"}
				if *status != "" && !slices.Contains(statuses(), *status) {
					return usageErrorf(path, "--status: unknown status %q (known: %s)", *status, strings.Join(statuses(), ", "))
				}
				if *limit < 0 || *limit > maxPage {
					return usageErrorf(path, "--limit must be between 1 and %d", maxPage)
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				opts := client.ListOptions{Limit: *limit, Cursor: *cursor, Status: protocol.JobStatus(*status), Blueprint: *bp}
				var page protocol.JobList
				if *all {
					page.Jobs = []protocol.Job{}
					for job, err := range c.AllJobs(ctx, opts) {
						if err != nil {
							return err
						}
						page.Jobs = append(page.Jobs, job)
					}
				} else {
					p, err := c.Jobs(ctx, opts)
					if err != nil {
						return err
					}
					page = *p
					if page.Jobs == nil {
						page.Jobs = []protocol.Job{}
					}
				}
				if a.g.json {
					return a.printJSON(page)
				}
				return a.printJobs(page)
			}
		},
	}
}

func (a *app) printJobs(page protocol.JobList) error {
	if len(page.Jobs) == 0 {
		fmt.Fprintln(a.stderr, "No jobs found.")
	} else {
		t := newTable(a.stdout, "ID", "BLUEPRINT", "STATUS", "STATE", "PROGRESS", "UPDATED")
		for _, j := range page.Jobs {
			t.row(j.ID, j.Blueprint, string(j.Status), j.CurrentState, formatPercent(j.Progress), formatTime(j.UpdatedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if page.NextCursor != "" {
		fmt.Fprintf(a.stderr, "More jobs: add --cursor %s for the next page, or --all.\n", page.NextCursor)
	}
	return nil
}
