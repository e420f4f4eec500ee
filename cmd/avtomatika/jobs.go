package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/watch"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// maxDataFile bounds the size of a --data @FILE.
const maxDataFile = 64 << 20

func jobsCreate() *command {
	return &command{
		name: "create", args: "ENDPOINT", minArgs: 1, maxArgs: 1,
		summary: "start a job through a blueprint's endpoint and print its id",
		help: `ENDPOINT is the path the blueprint declares, such as /jobs/full_showcase.
The full path that "blueprints list" shows (/api/v1/jobs/full_showcase) and
the blueprint's name (full_showcase) work too.

The job id is printed on stdout, alone on its line; with --json the answer
{"job_id": ..., "status": "accepted"}.

With --watch the job is then followed like "jobs watch" does, and the exit
status is 6 when it ends without finishing. With --watch and --json the
progress goes to stderr and only the final job, as JSON, to stdout.`,
		setup: func(fs *flag.FlagSet) action {
			data := fs.String("data", "", "initial data: a `JSON` object, or @FILE to read one from a file")
			webhook := fs.String("webhook", "", "`URL` the orchestrator notifies when the job ends")
			follow := fs.Bool("watch", false, "follow the job on a progress bar until it ends")
			poll := fs.Duration("poll", watch.DefaultPollInterval, "how often --watch polls the job")
			return func(ctx context.Context, a *app, args []string) error {
				path := []string{"jobs", "create"}
				initial, err := parseData(*data)
				if err != nil {
					return usageErrorf(path, "--data: %v", err)
				}
				if *poll <= 0 {
					return usageErrorf(path, "--poll must be positive")
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				endpoint, err := a.resolveEndpoint(ctx, c, args[0])
				if err != nil {
					return err
				}
				var opts []client.CreateOption
				if *webhook != "" {
					opts = append(opts, client.WithWebhook(*webhook))
				}
				id, err := c.CreateJob(ctx, endpoint, initial, opts...)
				if err != nil {
					return noEndpoint(err, endpoint)
				}
				switch {
				case *follow:
					if !a.g.json {
						fmt.Fprintln(a.stdout, id)
					}
					return a.follow(ctx, c, id, *poll)
				case a.g.json:
					return a.printJSON(protocol.CreateJobResponse{Status: "accepted", JobID: id})
				}
				_, err = fmt.Fprintln(a.stdout, id)
				return err
			}
		},
	}
}

// noEndpoint explains a 404, or the 405 that a path under an existing
// route answers, to a job creation: no blueprint serves that endpoint. Both
// count as "not found".
func noEndpoint(err error, endpoint string) error {
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusNotFound && apiErr.StatusCode != http.StatusMethodNotAllowed) {
		return err
	}
	return notFoundError{wrapf(err, "no blueprint serves the endpoint %s (\"avtomatika blueprints list\" shows them)", endpoint)}
}

// notFoundError is an error that counts as client.ErrNotFound.
type notFoundError struct{ error }

func (e notFoundError) Is(target error) bool { return target == client.ErrNotFound }

func (e notFoundError) Unwrap() error { return e.error }

// parseData reads --data: "" (no initial data), a JSON object, or @FILE.
// Numbers keep their exact digits.
func parseData(v string) (map[string]any, error) {
	if v == "" {
		return nil, nil
	}
	raw := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		raw, err = io.ReadAll(io.LimitReader(f, maxDataFile+1))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(raw) > maxDataFile {
			return nil, fmt.Errorf("%s is larger than %d MiB", name, maxDataFile>>20)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not a JSON object: data after the object")
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object: null")
	}
	return m, nil
}

// resolveEndpoint turns the ENDPOINT argument into a path relative to
// /api/{version}: a full /api/{version}/... path loses its prefix, and a
// bare word that names a blueprint becomes that blueprint's endpoint.
func (a *app) resolveEndpoint(ctx context.Context, c *client.Client, arg string) (string, error) {
	prefix := protocol.ClientPrefix + "/"
	if a.g.apiVersion != "" {
		prefix += strings.Trim(a.g.apiVersion, "/") + "/"
	}
	if rest, ok := strings.CutPrefix(arg, prefix); ok {
		return "/" + rest, nil
	}
	if strings.Contains(arg, "/") {
		return arg, nil
	}
	bps, err := c.Blueprints(ctx)
	if err != nil {
		return "", err
	}
	for _, bp := range bps {
		if bp.Name != arg {
			continue
		}
		if bp.Endpoint == "" {
			return "", usageErrorf([]string{"jobs", "create"},
				"blueprint %q has no endpoint: it is started by other blueprints or by the scheduler", arg)
		}
		rest, ok := strings.CutPrefix(bp.Endpoint, prefix)
		if !ok {
			return "", usageErrorf([]string{"jobs", "create"},
				"blueprint %q is served at %s: pass --api-version %s", arg, bp.Endpoint, bp.APIVersion)
		}
		return "/" + rest, nil
	}
	return arg, nil
}

func jobsWatch() *command {
	return &command{
		name: "watch", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "follow a job on a live progress bar until it ends",
		help: `The job is polled and one line is redrawn: a 30-cell bar, the percentage,
the status in capitals, the current state and the progress message. When
stdout is not a terminal, a plain line is printed each time what it shows
changes. At the end the final status and state_history.analysis_summary (or
the result, or the error) are printed.

The exit status is 0 when the job finished and 6 when it ended failed,
cancelled, error or quarantined. Interrupting the command (Ctrl-C) leaves the
job running. With --json the progress goes to stderr and only the final job,
as JSON, to stdout.`,
		setup: func(fs *flag.FlagSet) action {
			poll := fs.Duration("poll", watch.DefaultPollInterval, "how often the job is polled")
			return func(ctx context.Context, a *app, args []string) error {
				if *poll <= 0 {
					return usageErrorf([]string{"jobs", "watch"}, "--poll must be positive")
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				return a.follow(ctx, c, args[0], *poll)
			}
		},
	}
}

// follow shows a job's progress until it ends, prints how it ended, and
// returns a *jobEndedError when it did not finish.
func (a *app) follow(ctx context.Context, c *client.Client, id string, poll time.Duration) error {
	progress := a.stdout
	if a.g.json {
		progress = a.stderr
	}
	job, err := watch.Job(ctx, c, id, progress, watch.PollEvery(poll))
	if err != nil {
		if ctx.Err() != nil {
			return wrapf(err, "stopped following job %s, which keeps running", id)
		}
		return err
	}
	if a.g.json {
		err = a.printJSON(job)
	} else {
		err = watch.Summary(a.stdout, job)
	}
	if err != nil {
		return err
	}
	if job.Status != protocol.StatusFinished {
		return &jobEndedError{job: job}
	}
	return nil
}

func jobsCancel() *command {
	return &command{
		name: "cancel", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "cancel a job",
		help: `A job that is unknown, belongs to another client or has already ended is
"not found" (exit status 3).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				id := args[0]
				if err := c.Cancel(ctx, id); err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]string{"job_id": id, "status": "cancellation_request_accepted"})
				}
				_, err = fmt.Fprintf(a.stdout, "Cancellation of job %s requested.\n", id)
				return err
			}
		},
	}
}

func jobsApprove() *command {
	return &command{
		name: "approve", args: "ID DECISION", minArgs: 2, maxArgs: 2,
		summary: "send a human decision to a job waiting for one",
		help: `DECISION is one of those the job offers ("jobs get ID" shows them under
Approval), e.g. approved or rejected. A decision the job does not offer is
an invalid request and a job that is not waiting for one a conflict (exit
status 1 for both, with the server's message).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				id, decision := args[0], args[1]
				if decision == "" {
					return usageErrorf([]string{"jobs", "approve"}, "empty decision")
				}
				if err := c.Approve(ctx, id, decision); err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]string{"job_id": id, "decision": decision, "status": "approval_received"})
				}
				_, err = fmt.Fprintf(a.stdout, "Decision %q sent to job %s.\n", decision, id)
				return err
			}
		},
	}
}
