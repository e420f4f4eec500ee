package orchestrator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// A job that never dispatched shows its lists as [], not null nor absent,
// in its view (waiting for a human, and ended); job lists, which do not
// load them, leave them out (never null).
func TestJobViewListsAreEmptyNotNull(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("ask").Endpoint("v1", "/jobs/ask")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("go on?")
	}, blueprint.On("approved", "finished"))
	bp.End("finished", nil)
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), HistoryURI: "sqlite:" + filepath.Join(t.TempDir(), "h.db"),
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}}, bp)
	c, err := client.New(url, "acme-token")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.CreateJob(ctx, "/jobs/ask", nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) map[string]json.RawMessage {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", url+path, nil)
		req.Header.Set(protocol.HeaderClientToken, "acme-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]json.RawMessage
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return m
	}
	wantEmpty := func(where string, job map[string]json.RawMessage) {
		t.Helper()
		for _, list := range []string{"tasks", "dispatches"} {
			if got := string(job[list]); got != "[]" {
				t.Errorf("%s: %q = %s, want []", where, list, orMissing(got))
			}
		}
	}
	testenv.WaitUntil(t, "the job waits for a human", 10*time.Second, func() bool {
		return string(get("/api/v1/jobs/" + id)["status"]) == `"waiting_for_human"`
	})
	wantEmpty("waiting", get("/api/v1/jobs/"+id))
	if err := c.Approve(ctx, id, "approved"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantEmpty("ended", get("/api/v1/jobs/"+id))
	var list struct {
		Jobs []map[string]json.RawMessage `json:"jobs"`
	}
	raw, _ := json.Marshal(get("/api/v1/jobs"))
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Jobs) != 1 {
		t.Fatalf("job list: %s (%v)", raw, err)
	}
	for _, name := range []string{"tasks", "dispatches"} {
		if v, ok := list.Jobs[0][name]; ok {
			t.Errorf("listed: %q = %s, want it left out", name, v)
		}
	}
}

func orMissing(s string) string {
	if s == "" {
		return "(missing)"
	}
	return s
}

// The job list read from history shows what each job waits for: a job
// whose first step queued a task (in the create's own write), and one that
// reached an approval after a transition, not "pending" or "running".
func TestHistoryListShowsWhatJobsWaitFor(t *testing.T) {
	t.Parallel()
	ask := blueprint.New("later_ask").Endpoint("v1", "/jobs/later_ask")
	ask.Start("start", func(c *blueprint.Context) error { return c.GoTo("ask") }, blueprint.To("ask"))
	ask.State("ask", func(c *blueprint.Context) error { return c.AwaitApproval("go on?") }, blueprint.On("approved", "finished"))
	ask.End("finished", nil)
	work := blueprint.New("queued").Endpoint("v1", "/jobs/queued")
	work.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "nobody_has_it"})
	}, blueprint.On("success", "finished"))
	work.End("finished", nil)
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), HistoryURI: "sqlite:" + filepath.Join(t.TempDir(), "h.db"),
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}}, ask, work)
	c, err := client.New(url, "acme-token")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string]protocol.JobStatus{}
	for path, status := range map[string]protocol.JobStatus{"/jobs/later_ask": protocol.StatusWaitingForHuman, "/jobs/queued": protocol.StatusWaitingForWorker} {
		id, err := c.CreateJob(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = status
	}
	testenv.WaitUntil(t, "history's list to show what the jobs wait for", 10*time.Second, func() bool {
		list, err := c.Jobs(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]protocol.JobStatus{}
		for _, j := range list.Jobs {
			got[j.ID] = j.Status
		}
		for id, status := range want {
			if got[id] != status {
				return false
			}
		}
		return true
	})
}
