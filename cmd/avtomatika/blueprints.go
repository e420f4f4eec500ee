package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/internal/graphsvg"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func blueprintsList() *command {
	return &command{
		name: "list", minArgs: 0, maxArgs: 0,
		summary: "list registered blueprints",
		help: `ENDPOINT is the full path that creates jobs; pass it, or the part after
/api/VERSION, or the blueprint's name to "jobs create". Blueprints without
one are started by other blueprints or by the scheduler. --json prints the
blueprints as the API returns them (an array).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, _ []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				bps, err := c.Blueprints(ctx)
				if err != nil {
					return err
				}
				if a.g.json {
					if bps == nil {
						bps = []protocol.BlueprintInfo{}
					}
					return a.printJSON(bps)
				}
				if len(bps) == 0 {
					fmt.Fprintln(a.stderr, "No blueprints registered.")
					return nil
				}
				t := newTable(a.stdout, "NAME", "ENDPOINT", "START", "STATES", "END STATES")
				for _, bp := range bps {
					t.row(bp.Name, bp.Endpoint, bp.StartState, strconv.Itoa(len(bp.States)), strings.Join(bp.EndStates, ","))
				}
				return t.flush()
			}
		},
	}
}

func blueprintsGraph() *command {
	return &command{
		name: "graph", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "print a blueprint's state graph (dot, mermaid or svg)",
		help: `dot is Graphviz source and mermaid a Mermaid state diagram, both as the
server renders them. svg lays the DOT source out with Graphviz built into
this program (WebAssembly; nothing to install), e.g.:
  avtomatika blueprints graph full_showcase --format svg > full_showcase.svg`,
		setup: func(fs *flag.FlagSet) action {
			format := fs.String("format", "dot", "`FORMAT` of the graph: dot, mermaid or svg")
			return func(ctx context.Context, a *app, args []string) error {
				path := []string{"blueprints", "graph"}
				switch *format {
				case "dot", "mermaid", "svg":
				default:
					return usageErrorf(path, "--format: unknown format %q (want dot, mermaid or svg)", *format)
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				serverFormat := *format
				if serverFormat == "svg" {
					serverFormat = "dot"
				}
				graph, err := c.Graph(ctx, args[0], serverFormat)
				if err != nil {
					return err
				}
				if *format == "svg" {
					svg, err := graphsvg.Render(ctx, graph)
					if err != nil {
						return err
					}
					_, err = a.stdout.Write(svg)
					return err
				}
				if !strings.HasSuffix(graph, "\n") {
					graph += "\n"
				}
				_, err = io.WriteString(a.stdout, graph)
				return err
			}
		},
	}
}
