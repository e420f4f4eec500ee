package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

var uuidLine = regexp.MustCompile(`^[0-9a-f-]{36}\n$`)

func TestCreate(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	t.Run("prints the id", func(t *testing.T) {
		r := s.cli(t, "jobs", "create", "/jobs/quick")
		mustCode(t, r, 0)
		if !uuidLine.MatchString(r.stdout) || r.stderr != "" {
			t.Fatalf("want the id alone on stdout: %s", r)
		}
		s.waitStatus(t, strings.TrimSpace(r.stdout), protocol.StatusFinished)
	})

	t.Run("inline data and webhook", func(t *testing.T) {
		id := s.create(t, "/jobs/quick", "--data", `{"path": "/s3/in.mp4", "n": 3, "nested": {"ok": true}}`,
			"--webhook", "http://127.0.0.1:1/webhook")
		j := s.waitStatus(t, id, protocol.StatusFinished)
		want := map[string]any{"path": "/s3/in.mp4", "n": 3.0, "nested": map[string]any{"ok": true}}
		if !reflect.DeepEqual(j.InitialData, want) {
			t.Errorf("initial data = %#v, want %#v", j.InitialData, want)
		}
		if j.WebhookURL != "http://127.0.0.1:1/webhook" {
			t.Errorf("webhook = %q", j.WebhookURL)
		}
	})

	t.Run("data from a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data.json")
		if err := os.WriteFile(file, []byte(`{"path": "/from/file"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		id := s.create(t, "/jobs/quick", "--data", "@"+file)
		j := s.waitStatus(t, id, protocol.StatusFinished)
		if j.InitialData["path"] != "/from/file" {
			t.Errorf("initial data = %#v", j.InitialData)
		}
	})

	t.Run("full path and blueprint name", func(t *testing.T) {
		for _, endpoint := range []string{"/api/v1/jobs/quick", "quick", "jobs/quick"} {
			id := s.create(t, endpoint)
			if j := s.waitStatus(t, id, protocol.StatusFinished); j.Blueprint != "quick" {
				t.Errorf("%s created a %s job", endpoint, j.Blueprint)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		r := s.cli(t, "jobs", "create", "/jobs/quick", "--json")
		mustCode(t, r, 0)
		resp := decodeJSON[protocol.CreateJobResponse](t, r)
		if resp.Status != "accepted" || resp.JobID == "" {
			t.Errorf("response: %+v", resp)
		}
	})

	t.Run("invalid webhook is the server's 400", func(t *testing.T) {
		r := s.cli(t, "jobs", "create", "/jobs/quick", "--webhook", "ftp://example.com/hook")
		mustCode(t, r, 1)
		if !strings.Contains(r.stderr, "400 Bad Request: invalid webhook_url") {
			t.Errorf("stderr: %s", r)
		}
	})
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/quick", "--data", `{"path": "/in.mp4"}`)
	s.waitStatus(t, id, protocol.StatusFinished)

	r := s.cli(t, "jobs", "get", id)
	mustCode(t, r, 0)
	for _, want := range []string{"ID:", id, "Blueprint:", "quick", "Status:", "finished", "Progress:", "100%",
		`Initial data:`, `{"path":"/in.mp4"}`, "Result:", `"analysis_summary"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q: %s", want, r)
		}
	}

	r = s.cli(t, "jobs", "get", id, "--json")
	mustCode(t, r, 0)
	j := decodeJSON[protocol.Job](t, r)
	if j.ID != id || j.Status != protocol.StatusFinished || j.Progress != 1 || j.StateHistory["analysis_summary"] == nil {
		t.Errorf("job: %+v", j)
	}

	// One field: only its value.
	r = s.cli(t, "jobs", "get", id, "--fields", "status")
	mustCode(t, r, 0)
	if r.stdout != "finished\n" {
		t.Errorf("--fields status: %s", r)
	}

	// Several fields: label and value each.
	r = s.cli(t, "jobs", "get", id, "--fields", "status, current_state,progress")
	mustCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "status:") || !strings.HasSuffix(lines[0], "finished") ||
		!strings.HasSuffix(lines[1], "finished") || !strings.HasSuffix(lines[2], " 1") {
		t.Errorf("--fields text: %q", lines)
	}

	// JSON: the fields asked for, plus id; a missing one is null.
	r = s.cli(t, "jobs", "get", id, "--fields", "status,progress,error_message", "--json")
	mustCode(t, r, 0)
	m := decodeJSON[map[string]any](t, r)
	want := map[string]any{"id": id, "status": "finished", "progress": 1.0, "error_message": nil}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("--fields --json = %v, want %v", m, want)
	}
}

func TestGetShowsApprovalAndFailure(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, protocol.StatusWaitingForHuman)
	r := s.cli(t, "jobs", "get", id)
	mustCode(t, r, 0)
	if !strings.Contains(r.stdout, "please review (decisions: approved, rejected)") ||
		!strings.Contains(r.stdout, "Decide with:  avtomatika jobs approve "+id+" DECISION\n") {
		t.Errorf("no approval in %s", r)
	}
}

func TestWatchFinished(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	r := s.cli(t, "jobs", "create", "/jobs/quick", "--data", `{"path": "/in.mp4"}`, "--watch", fastPoll)
	mustCode(t, r, 0)
	lines := strings.Split(r.stdout, "\n")
	id := lines[0]
	if !uuidLine.MatchString(id + "\n") {
		t.Fatalf("first line is not the id: %s", r)
	}
	for _, want := range []string{"100% FINISHED\n", "Job " + id + ": FINISHED\n", "Analysis summary:\n", `"input": "/in.mp4"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q: %s", want, r)
		}
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("a bar was drawn on a buffer: %q", r.stdout)
	}
}

func TestWatchApproved(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	watch := s.cliAsync(t.Context(), "jobs", "watch", id, fastPoll)
	watch.waitStdout(t, "WAITING_FOR_HUMAN")

	r := s.cli(t, "jobs", "approve", id, "approved")
	mustCode(t, r, 0)
	if r.stdout != `Decision "approved" sent to job `+id+".\n" {
		t.Errorf("approve: %s", r)
	}

	r = watch.wait()
	mustCode(t, r, 0)
	hint := "To decide, run: avtomatika jobs approve " + id + " DECISION (DECISION: approved or rejected)\n"
	for _, want := range []string{"WAITING_FOR_HUMAN [review] please review\n" + hint, "100% FINISHED\n", "Job " + id + ": FINISHED\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("watch output lacks %q: %s", want, r)
		}
	}
	if n := strings.Count(r.stdout, "To decide"); n != 1 {
		t.Errorf("hint printed %d times: %s", n, r)
	}
}

// The approval hint is a command to copy: it keeps the flags that say
// where the orchestrator is, never the token, and quotes for the shell.
func TestApprovalCommand(t *testing.T) {
	t.Parallel()
	a := &app{g: globals{url: "http://host:8080", token: "s3cret", apiVersion: "v2"}}
	j := &protocol.Job{ID: "j-1", Status: protocol.StatusWaitingForHuman,
		Approval: &protocol.ApprovalInfo{Decisions: []string{"ok", "needs work", "it's bad"}}}
	want := `To decide, run: avtomatika --url http://host:8080 --api-version v2 jobs approve j-1 DECISION ` +
		`(DECISION: ok or 'needs work' or 'it'\''s bad')`
	if got := a.approvalHint(j); got != want {
		t.Errorf("hint = %q, want %q", got, want)
	}
	j.Approval = nil
	want = `To decide, run: avtomatika --url http://host:8080 --api-version v2 jobs approve j-1 DECISION ` +
		`("avtomatika --url http://host:8080 --api-version v2 jobs get j-1" lists the decisions)`
	if got := a.approvalHint(j); got != want {
		t.Errorf("hint = %q, want %q", got, want)
	}
	if got := a.approvalHint(&protocol.Job{ID: "j-1", Status: protocol.StatusRunning}); got != "" {
		t.Errorf("hint for a running job: %q", got)
	}
}

func TestWatchCancelled(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	watch := s.cliAsync(t.Context(), "jobs", "watch", id, fastPoll)
	watch.waitStdout(t, "WAITING_FOR_HUMAN")

	r := s.cli(t, "jobs", "cancel", id)
	mustCode(t, r, 0)
	if r.stdout != "Cancellation of job "+id+" requested.\n" {
		t.Errorf("cancel: %s", r)
	}

	r = watch.wait()
	mustCode(t, r, 6)
	if !strings.Contains(r.stdout, "Job "+id+": CANCELLED\n") || !strings.Contains(r.stderr, "job "+id+" ended cancelled") {
		t.Errorf("watch: %s", r)
	}

	// An ended job cannot be cancelled; it is not "not found".
	r = s.cli(t, "jobs", "cancel", id)
	mustCode(t, r, 1)
	if want := `avtomatika: cancel job "` + id + `": the job has already ended (cancelled): there is nothing to cancel` + "\n"; r.stderr != want {
		t.Errorf("second cancel: %s", r)
	}
}

// Cancelling and approving a job that has ended are refused alike, and
// both differ from a job that does not exist.
func TestEndedJobRefusedAlike(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/quick")
	s.waitStatus(t, id, protocol.StatusFinished)
	for verb, args := range map[string][]string{
		"cancel":  {"jobs", "cancel", id},
		"approve": {"jobs", "approve", id, "approved"},
	} {
		r := s.cli(t, args...)
		mustCode(t, r, 1)
		want := "avtomatika: " + verb + ` job "` + id + `": the job has already ended (finished): there is nothing to ` + verb + "\n"
		if r.stderr != want {
			t.Errorf("%s: stderr = %q, want %q", verb, r.stderr, want)
		}
	}
	for _, args := range [][]string{{"jobs", "cancel", "no-such-job"}, {"jobs", "approve", "no-such-job", "approved"}} {
		r := s.cli(t, args...)
		mustCode(t, r, 3)
		if !strings.Contains(r.stderr, "404 Not Found: Job not found") || strings.Contains(r.stderr, "ended") {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestWatchFailed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	r := s.cli(t, "jobs", "create", "/jobs/doomed", "--watch", fastPoll)
	mustCode(t, r, 6)
	if !strings.Contains(r.stdout, "FAILED [broken]\n") || !strings.Contains(r.stdout, ": FAILED\n") {
		t.Errorf("stdout: %s", r)
	}

	// Rejected by a human: a failed end state.
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, protocol.StatusWaitingForHuman)
	mustCode(t, s.cli(t, "jobs", "approve", id, "rejected", "--json"), 0)
	r = s.cli(t, "jobs", "watch", id, fastPoll)
	mustCode(t, r, 6)
	if !strings.Contains(r.stdout, "FAILED [rejected]") {
		t.Errorf("stdout: %s", r)
	}
}

func TestWatchJSON(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	r := s.cli(t, "jobs", "create", "/jobs/quick", "--watch", "--json", fastPoll)
	mustCode(t, r, 0)
	j := decodeJSON[protocol.Job](t, r)
	if j.Status != protocol.StatusFinished {
		t.Errorf("job: %+v", j)
	}
	if !strings.Contains(r.stderr, "100% FINISHED") {
		t.Errorf("progress not on stderr: %s", r)
	}
}

func TestApprove(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, protocol.StatusWaitingForHuman)

	r := s.cli(t, "jobs", "approve", id, "maybe")
	mustCode(t, r, 1)
	if want := `avtomatika: approve job "` + id + `": the job offers no decision "maybe": send one of approved, rejected` + "\n"; r.stderr != want {
		t.Errorf("invalid decision: %s", r)
	}

	r = s.cli(t, "jobs", "approve", id, "approved", "--json")
	mustCode(t, r, 0)
	m := decodeJSON[map[string]string](t, r)
	if m["job_id"] != id || m["decision"] != "approved" || m["status"] != "approval_received" {
		t.Errorf("approve --json: %v", m)
	}
	s.waitStatus(t, id, protocol.StatusFinished)

	// Not waiting any more: refused.
	r = s.cli(t, "jobs", "approve", id, "approved")
	mustCode(t, r, 1)
	if !strings.Contains(r.stderr, "the job has already ended (finished): there is nothing to approve") {
		t.Errorf("approve twice: %s", r)
	}
}

func TestCancelJSON(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, protocol.StatusWaitingForHuman)
	r := s.cli(t, "jobs", "cancel", id, "--json")
	mustCode(t, r, 0)
	if m := decodeJSON[map[string]string](t, r); m["job_id"] != id || m["status"] != "cancellation_request_accepted" {
		t.Errorf("cancel --json: %v", m)
	}
	s.waitStatus(t, id, protocol.StatusCancelled)
}

func TestList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	r := s.cli(t, "jobs", "list")
	mustCode(t, r, 0)
	if r.stdout != "" || r.stderr != "No jobs found.\n" {
		t.Errorf("empty list: %s", r)
	}
	r = s.cli(t, "jobs", "list", "--json")
	mustCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "{\n  \"jobs\": []\n}" {
		t.Errorf("empty list --json: %s", r)
	}

	var quick, all []string
	for range 3 {
		id := s.create(t, "/jobs/quick")
		s.waitStatus(t, id, protocol.StatusFinished)
		quick = append(quick, id)
	}
	review := s.create(t, "/jobs/review")
	s.waitStatus(t, review, protocol.StatusWaitingForHuman)
	doomed := s.create(t, "/jobs/doomed")
	s.waitStatus(t, doomed, protocol.StatusFailed)
	all = append(append(all, quick...), review, doomed)

	r = s.cli(t, "jobs", "list")
	mustCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "STATUS") {
		t.Fatalf("table: %s", r)
	}
	for _, id := range all {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("job %s not listed: %s", id, r)
		}
	}

	ids := func(r result) []string {
		var out []string
		for _, j := range decodeJSON[protocol.JobList](t, r).Jobs {
			out = append(out, j.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

	r = s.cli(t, "jobs", "list", "--status", "finished", "--blueprint", "quick", "--json")
	mustCode(t, r, 0)
	if got := ids(r); !slices.Equal(got, sorted(quick)) {
		t.Errorf("finished quick jobs = %v, want %v", got, sorted(quick))
	}
	r = s.cli(t, "jobs", "list", "--status", "waiting_for_human", "--json")
	mustCode(t, r, 0)
	if got := ids(r); !slices.Equal(got, []string{review}) {
		t.Errorf("waiting jobs = %v", got)
	}
	r = s.cli(t, "jobs", "list", "--blueprint", "doomed")
	mustCode(t, r, 0)
	if !strings.Contains(r.stdout, doomed) || strings.Count(strings.TrimSpace(r.stdout), "\n") != 1 {
		t.Errorf("doomed jobs: %s", r)
	}

	// One page of two, with a cursor for the next one.
	r = s.cli(t, "jobs", "list", "--limit", "2")
	mustCode(t, r, 0)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 2 || !strings.Contains(r.stderr, "More jobs: add --cursor ") {
		t.Errorf("one page: %s", r)
	}
	r = s.cli(t, "jobs", "list", "--limit", "2", "--json")
	mustCode(t, r, 0)
	page := decodeJSON[protocol.JobList](t, r)
	if len(page.Jobs) != 2 || page.NextCursor == "" {
		t.Fatalf("page: %+v", page)
	}
	r = s.cli(t, "jobs", "list", "--limit", "2", "--cursor", page.NextCursor, "--json")
	mustCode(t, r, 0)
	if next := decodeJSON[protocol.JobList](t, r); len(next.Jobs) != 2 || next.Jobs[0].ID == page.Jobs[0].ID {
		t.Errorf("second page: %+v", next)
	}

	// --all walks every page.
	r = s.cli(t, "jobs", "list", "--limit", "2", "--all", "--json")
	mustCode(t, r, 0)
	if got := ids(r); !slices.Equal(got, sorted(all)) {
		t.Errorf("--all = %v, want %v", got, sorted(all))
	}
	r = s.cli(t, "jobs", "list", "--limit", "2", "--all")
	mustCode(t, r, 0)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != len(all) || r.stderr != "" {
		t.Errorf("--all text: %s", r)
	}
}

// A server that answers 409 for cancelling an ended job gets the same
// message as one that answers 404.
func TestCancelEndedJobConflict(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/jobs/j-1/cancel", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":"Job has already ended"}`))
	})
	mux.HandleFunc("GET /api/v1/jobs/j-1", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"j-1","status":"failed"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	r := runCLI(t.Context(), (&testServer{url: srv.URL}).env(), "jobs", "cancel", "j-1")
	mustCode(t, r, 1)
	if want := `avtomatika: cancel job "j-1": the job has already ended (failed): there is nothing to cancel` + "\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

// A failed job runs again with "jobs retry"; a job that ended by its
// blueprint's choice is refused with the server's reason, an unknown one
// is not found.
func TestRetry(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/flaky")
	s.waitStatus(t, id, protocol.StatusFailed)
	s.fixed.Store(true)
	r := s.cli(t, "jobs", "retry", id)
	mustCode(t, r, 0)
	if r.stdout != "Job "+id+" runs again from state start.\n" {
		t.Errorf("retry: %s", r)
	}
	s.waitStatus(t, id, protocol.StatusFinished)

	doomed := s.create(t, "/jobs/doomed")
	s.waitStatus(t, doomed, protocol.StatusFailed)
	r = s.cli(t, "jobs", "retry", doomed, "--json")
	mustCode(t, r, 1)
	if !strings.Contains(r.stderr, `409 Conflict: job cannot be retried: job `+doomed+` ended in its blueprint's end state "broken"`) {
		t.Errorf("retry of a job failed by design: %s", r)
	}
	r = s.cli(t, "jobs", "retry", "no-such-job")
	mustCode(t, r, 3)
	if !strings.Contains(r.stderr, "404 Not Found: Job not found") {
		t.Errorf("retry of an unknown job: %s", r)
	}
}
