package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func jobsGet() *command {
	return &command{
		name: "get", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "show a job",
		help: `Text output summarises the job; --json prints it as the API returns it.

--fields keeps only the named members, given by their API names:
` + wrapWords(strings.Join(jobFields(), ", ")+".", 0) + `
In text a single field prints only its value, handy in scripts:
  status=$(avtomatika jobs get "$id" --fields status)
With --json the object also has "id", and a field the job lacks is null.`,
		setup: func(fs *flag.FlagSet) action {
			fields := fs.String("fields", "", "comma-separated `FIELDS` to show, e.g. status,progress")
			return func(ctx context.Context, a *app, args []string) error {
				list, err := parseFields(*fields)
				if err != nil {
					return usageErrorf([]string{"jobs", "get"}, "--fields: %v", err)
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				var opts []client.JobOption
				if len(list) > 0 {
					opts = append(opts, client.Fields(list...))
				}
				job, err := c.Job(ctx, args[0], opts...)
				if err != nil {
					return err
				}
				switch {
				case len(list) > 0:
					return a.printFields(job, list)
				case a.g.json:
					return a.printJSON(job)
				}
				return printJob(a.stdout, job, a.approvalCommand(job))
			}
		},
	}
}

// jobFields returns the JSON names of the job's members, in API order.
func jobFields() []string {
	t := reflect.TypeFor[protocol.Job]()
	out := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// parseFields splits and checks --fields; duplicates are dropped.
func parseFields(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	known := jobFields()
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
			continue
		case !slices.Contains(known, f):
			return nil, fmt.Errorf("unknown field %q (known: %s)", f, strings.Join(known, ", "))
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no field named (e.g. --fields status,progress)")
	}
	return out, nil
}

// printFields prints the selected members of a job.
func (a *app) printFields(job *protocol.Job, fields []string) error {
	raw, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		return fmt.Errorf("decode job: %w", err)
	}
	if a.g.json {
		out := map[string]any{"id": job.ID}
		for _, f := range fields {
			out[f] = all[f] // nil, printed as null, when the job lacks it
		}
		return a.printJSON(out)
	}
	if len(fields) == 1 {
		_, err := fmt.Fprintln(a.stdout, formatValue(all[fields[0]]))
		return err
	}
	t := newTable(a.stdout)
	for _, f := range fields {
		t.row(f+":", formatValue(all[f]))
	}
	return t.flush()
}

// kv is a labelled value of a text report.
type kv struct{ key, value string }

// approvalCommand is the command that sends a decision to a job waiting
// for one, or "".
func (a *app) approvalCommand(j *protocol.Job) string {
	if j.Status != protocol.StatusWaitingForHuman {
		return ""
	}
	return a.command("jobs", "approve", j.ID) + " DECISION"
}

// printJob prints a job for people: the main facts, then what it has of
// approval (with the command that decides, when given), data, result and
// tasks.
func printJob(w io.Writer, j *protocol.Job, decide string) error {
	t := newTable(w)
	t.row("ID:", j.ID)
	t.row("Blueprint:", j.Blueprint)
	t.row("Status:", string(j.Status))
	t.row("State:", j.CurrentState)
	t.row("Progress:", formatPercent(j.Progress))
	optional := []kv{
		{"Message:", j.ProgressMessage},
		{"Error:", j.ErrorMessage},
		{"Created:", formatTime(j.CreatedAt)},
		{"Updated:", formatTime(j.UpdatedAt)},
		{"Finished:", formatTime(j.FinishedAt)},
		{"Parent job:", j.ParentJobID},
		{"Child job:", j.ChildJobID},
		{"Webhook:", j.WebhookURL},
	}
	if ap := j.Approval; ap != nil {
		optional = append(optional, kv{"Approval:",
			fmt.Sprintf("%s (decisions: %s)", ap.Message, strings.Join(ap.Decisions, ", "))})
	}
	optional = append(optional, kv{"Decide with:", decide})
	if len(j.InitialData) > 0 {
		optional = append(optional, kv{"Initial data:", formatValue(j.InitialData)})
	}
	if len(j.StateHistory) > 0 {
		optional = append(optional, kv{"State history:", formatValue(j.StateHistory)})
	}
	if j.Result != nil {
		optional = append(optional, kv{"Result:", formatValue(j.Result)})
	}
	for _, row := range optional {
		if row.value != "" {
			t.row(row.key, row.value)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(j.Tasks) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nTasks:")
	tasks := newTable(w, "ID", "TYPE", "STATE", "ATTEMPT", "WORKER", "STRATEGY", "CANDIDATES", "REASON")
	for _, task := range j.Tasks {
		tasks.row(task.ID, task.Type, task.State, strconv.Itoa(task.Attempt), task.WorkerID,
			task.Strategy, strconv.Itoa(task.Candidates), task.Reason)
	}
	return tasks.flush()
}
