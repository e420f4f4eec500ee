package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
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
					return usageErrorf(path, "%v", err)
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
					var apiErr *client.Error
					if errors.As(err, &apiErr) && routeNotFound(apiErr) {
						// The endpoint, or the URL? Where the blueprints
						// cannot be listed either, the URL is wrong.
						if _, lerr := c.Blueprints(ctx); errors.Is(lerr, client.ErrNotFound) {
							return err
						}
					}
					return noEndpoint(err)
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
func noEndpoint(err error) error {
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusNotFound && apiErr.StatusCode != http.StatusMethodNotAllowed) {
		return err
	}
	return notFoundError{retell(err, apiErr, fmt.Sprintf(
		"no blueprint serves this endpoint (%d); \"avtomatika blueprints list\" shows the endpoints", apiErr.StatusCode))}
}

// notFoundError is an error that counts as client.ErrNotFound.
type notFoundError struct{ error }

func (e notFoundError) Is(target error) bool { return target == client.ErrNotFound }

func (e notFoundError) Unwrap() error { return e.error }

// parseData reads --data: "" (no initial data), a JSON object, or @FILE.
// Numbers keep their exact digits. An error is the whole message about the
// flag, in JSON's words.
func parseData(v string) (map[string]any, error) {
	if v == "" {
		return nil, nil
	}
	subject, example := "--data", `'{"quality":"low"}'`
	raw := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		subject, example = "--data @"+name, `{"quality":"low"}`
		f, err := os.Open(name)
		if err != nil {
			var pathErr *fs.PathError
			if errors.As(err, &pathErr) {
				err = pathErr.Err // the name is in the subject already
			}
			return nil, fmt.Errorf("%s: %w", subject, err)
		}
		defer f.Close()
		raw, err = io.ReadAll(io.LimitReader(f, maxDataFile+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", subject, err)
		}
		if len(raw) > maxDataFile {
			return nil, fmt.Errorf("%s: the file is larger than %d MiB", subject, maxDataFile>>20)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value any
	err := dec.Decode(&value)
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s is empty: it must be a JSON object, e.g. %s", subject, example)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%s is not valid JSON (it ends too early): it must be a JSON object, e.g. %s", subject, example)
	case errors.As(err, &syntaxErr):
		return nil, fmt.Errorf("%s is not valid JSON (%v, at byte %d): it must be a JSON object, e.g. %s",
			subject, syntaxErr, syntaxErr.Offset, example)
	case err != nil:
		return nil, fmt.Errorf("%s is not valid JSON (%v): it must be a JSON object, e.g. %s", subject, err, example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s must be one JSON object, e.g. %s, with nothing after it", subject, example)
	}
	m, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a JSON object, e.g. %s, not %s", subject, example, jsonKind(value))
	}
	return m, nil
}

// jsonKind names the kind of a decoded JSON value that is not an object.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return fmt.Sprintf("%v", v)
	}
	return "another JSON value"
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
		help: `The job is polled and one line is redrawn: the percentage, a 30-cell bar,
the status in capitals, the current state and the progress message. The
line fits the terminal's width: a long message loses its middle ("…"), the
status and the state are never cut. When stdout is not a terminal, a plain
line is printed each time what it shows changes. A job that waits for a
human decision gets, once, the command that sends it ("jobs approve ID
DECISION", with the decisions it offers). At the end the final status and
state_history.analysis_summary (or the result, or the error) are printed.

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
	job, err := watch.Job(ctx, c, id, progress, watch.PollEvery(poll), watch.Hint(a.approvalHint))
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

// approvalHint says how to send the decision a job waits for: the exact
// command, with the decisions the job offers.
func (a *app) approvalHint(j *protocol.Job) string {
	cmd := a.approvalCommand(j)
	if cmd == "" {
		return ""
	}
	if ap := j.Approval; ap != nil && len(ap.Decisions) > 0 {
		decisions := make([]string, len(ap.Decisions))
		for i, d := range ap.Decisions {
			decisions[i] = shellQuote(d)
		}
		return fmt.Sprintf("To decide, run: %s (DECISION: %s)", cmd, strings.Join(decisions, " or "))
	}
	return fmt.Sprintf("To decide, run: %s (\"%s\" lists the decisions)", cmd, a.command("jobs", "get", j.ID))
}

// ended returns the job when it can be read and has already ended, to tell
// a refusal for an ended job from one for a job that does not exist.
func ended(ctx context.Context, c *client.Client, id string) (*protocol.Job, bool) {
	j, err := c.Job(ctx, id, client.Fields("status"))
	if err != nil || !j.Status.Terminal() {
		return j, false
	}
	return j, true
}

func jobsCancel() *command {
	return &command{
		name: "cancel", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "cancel a job",
		help: `A job that has already ended cannot be cancelled (exit status 1, as for
approving it); a job that is unknown or belongs to another client is "not
found" (exit status 3).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				id := args[0]
				if err := c.Cancel(ctx, id); err != nil {
					// The server answers 404 for an ended job too (409
					// would say it better).
					if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrConflict) {
						if j, ok := ended(ctx, c, id); ok {
							return &refusal{sentinel: client.ErrConflict, msg: fmt.Sprintf(
								"cancel job %q: the job has already ended (%s): there is nothing to cancel", id, j.Status)}
						}
					}
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

func jobsRetry() *command {
	return &command{
		name: "retry", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "run a failed or quarantined job again from the state it failed in",
		help: `The job runs again from the state whose handler or task failed, with a
fresh count of attempts; "jobs watch ID" follows it. A job that cannot be
retried (not failed or quarantined, its blueprint changed, a child job) is
refused with the server's reason (exit status 1); a job that is unknown,
expired or belongs to another client is "not found" (exit status 3).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				id := args[0]
				state, err := c.Retry(ctx, id)
				if err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(protocol.RetryResponse{Status: "retry_accepted", JobID: id, State: state})
				}
				_, err = fmt.Fprintf(a.stdout, "Job %s runs again from state %s.\n", id, state)
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
Approval, "jobs watch ID" prints the command), e.g. approved or rejected.
A decision the job does not offer, and a job that is not waiting for one
(still running, or already ended), are refused with exit status 1; a job
that is unknown or belongs to another client is "not found" (exit status
3).`,
		setup: func(*flag.FlagSet) action {
			return func(ctx context.Context, a *app, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				id, decision := args[0], args[1]
				if err := c.Approve(ctx, id, decision); err != nil {
					return a.approveRefused(ctx, c, id, decision, err)
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

// approveRefused words the server's refusal of a decision: a job that is
// not waiting for one (409), or a decision it does not offer (400).
func (a *app) approveRefused(ctx context.Context, c *client.Client, id, decision string, err error) error {
	op := fmt.Sprintf("approve job %q", id)
	switch {
	case errors.Is(err, client.ErrConflict):
		j, err2 := c.Job(ctx, id, client.Fields("status"))
		switch {
		case err2 != nil:
		case j.Status.Terminal():
			return &refusal{sentinel: client.ErrConflict, msg: fmt.Sprintf(
				"%s: the job has already ended (%s): there is nothing to approve", op, j.Status)}
		default:
			return &refusal{sentinel: client.ErrConflict, msg: fmt.Sprintf(
				"%s: the job is not waiting for a decision (it is %s)", op, j.Status)}
		}
	case errors.Is(err, client.ErrInvalid):
		j, err2 := c.Job(ctx, id, client.Fields("status", "approval"))
		if err2 == nil && j.Approval != nil && len(j.Approval.Decisions) > 0 && !slices.Contains(j.Approval.Decisions, decision) {
			return &refusal{sentinel: client.ErrInvalid, msg: fmt.Sprintf(
				"%s: the job offers no decision %q: send one of %s", op, decision, strings.Join(j.Approval.Decisions, ", "))}
		}
	}
	return err
}
