package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

func TestHistorySQLite(t *testing.T) {
	t.Parallel()
	testHistory(t, "sqlite:"+filepath.Join(t.TempDir(), "history.db"))
}

func TestHistoryPostgres(t *testing.T) {
	t.Parallel()
	testHistory(t, testenv.PostgresSchemaURL(t, testenv.URL(t, testenv.PostgresVar), "avto_orch_test"))
}

// testHistory runs jobs through an orchestrator whose live store expires
// ended jobs quickly, then reads them back from history over HTTP.
func testHistory(t *testing.T, uri string) {
	o, url := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second, HistoryURI: uri,
		Store:   memory.New(memory.Options{Retention: 300 * time.Millisecond}),
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}, {Name: "other", Token: "other-token"}},
	}, pipeline())
	ctx, cancel := context.WithCancel(context.Background())
	w, _ := worker.New(worker.Config{ID: "w1", Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(),
		PollTimeout: time.Second, Resources: worker.Resources{DisableDetection: true}})
	w.Handle("prepare", func(context.Context, *worker.Task) (worker.Result, error) { return worker.Result{}, nil }, worker.Price(0.5))
	w.Handle("analyze", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		return worker.Result{Data: map[string]any{"file": task.Params()["file"]}}, nil
	})
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(ctx) }()
	defer func() { cancel(); <-wdone }()

	c, _ := client.New(url, "acme-token")
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"path": "/in.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, c, id, protocol.StatusWaitingForHuman)
	if err := c.Approve(ctx, id, "approved"); err != nil {
		t.Fatal(err)
	}
	final, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
	if err != nil || final.Status != protocol.StatusFinished {
		t.Fatalf("job %+v %v", final, err)
	}

	events, err := c.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.EventType)
	}
	joined := strings.Join(types, ",")
	for _, want := range []string{"job_created", "state_entered", "task_dispatched", "task_started", "task_result", "approval", "job_ended"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history lacks %s: %v", want, types)
		}
	}
	if types[0] != "job_created" || types[len(types)-1] != "job_ended" {
		t.Errorf("history order: %v", types)
	}
	for _, e := range events {
		if e.EventType == "task_dispatched" {
			detail, _ := e.Fields["detail"].(map[string]any)
			if e.Fields["worker_id"] != "w1" || detail["strategy"] == nil || detail["reason"] == nil {
				t.Errorf("dispatch decision not recorded: %+v", e.Fields)
			}
			break
		}
	}
	other, _ := client.New(url, "other-token")
	if _, err := other.History(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client read the history: %v", err)
	}

	// The live store forgets the ended job; the API still answers from history.
	time.Sleep(600 * time.Millisecond)
	if _, err := o.Job(ctx, id); err == nil {
		t.Fatal("the live store kept the job past its retention")
	}
	got, err := c.Job(ctx, id)
	if err != nil || got.Status != protocol.StatusFinished || got.StateHistory["analysed_by"] == nil {
		t.Fatalf("job from history: %+v %v", got, err)
	}
	if _, err := other.Job(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client read an expired job: %v", err)
	}
	second, _ := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
	time.Sleep(50 * time.Millisecond)
	page, err := c.Jobs(ctx, client.ListOptions{Limit: 1})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != second || page.NextCursor == "" {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = c.Jobs(ctx, client.ListOptions{Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != id {
		t.Fatalf("second page %+v %v", page, err)
	}
	page, _ = c.Jobs(ctx, client.ListOptions{Status: protocol.StatusFinished})
	if len(page.Jobs) != 1 || page.Jobs[0].ID != id {
		t.Fatalf("status filter: %+v", page)
	}
	if page, _ := other.Jobs(ctx, client.ListOptions{}); len(page.Jobs) != 0 {
		t.Fatalf("another client lists %d jobs", len(page.Jobs))
	}
}

// taskBlueprints: "flaky" runs one task that its worker fails once,
// transiently, before it succeeds; "stranded" waits for a skill that no
// worker has, with a short dispatch timeout; "tick" (for schedules) ends at
// once.
func taskBlueprints() []*blueprint.Blueprint {
	flaky := taskBlueprint("flaky", blueprint.Task{Type: "flaky"})
	stranded := taskBlueprint("stranded", blueprint.Task{Type: "nobody", DispatchTimeout: 300 * time.Millisecond})

	tick := blueprint.New("tick")
	tick.Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	tick.End("finished", nil)
	return []*blueprint.Blueprint{flaky, stranded, tick}
}

// taskBlueprint is blueprint name at /jobs/<name>: one task, then
// "finished" or "failed" by its result.
func taskBlueprint(name string, task blueprint.Task) *blueprint.Blueprint {
	bp := blueprint.New(name).Endpoint("v1", "/jobs/"+name)
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(task)
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	bp.End("finished", nil)
	bp.End("failed", nil)
	return bp
}

// serveOrchestrator starts an orchestrator with bps on a loopback port until
// the test ends and returns it with its URL.
func serveOrchestrator(t *testing.T, cfg orchestrator.Config, bps ...*blueprint.Blueprint) (*orchestrator.Orchestrator, string) {
	t.Helper()
	o, err := orchestrator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(bps...); err != nil {
		t.Fatal(err)
	}
	return o, serveForTest(t, o)
}

// startTaskWorker runs an SDK worker with the skills "flaky" (the first
// attempt of each task fails transiently) and "hold" (runs until
// cancelled) until the test ends, and waits for its registration.
func startTaskWorker(t *testing.T, url, id string, c *client.Client) {
	t.Helper()
	w, err := worker.New(worker.Config{
		ID: id, Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(), PollTimeout: time.Second,
		EnableWebSockets: true, Resources: worker.Resources{DisableDetection: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tries := map[string]int{}
	w.Handle("flaky", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		mu.Lock()
		tries[task.ID()]++
		n := tries[task.ID()]
		mu.Unlock()
		if n == 1 {
			return worker.Result{}, worker.Transient(errors.New("flaky: try again"))
		}
		return worker.Result{Data: map[string]any{"tries": n}}, nil
	}, worker.Price(0.01))
	w.Handle("hold", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		<-ctx.Done()
		return worker.Result{}, ctx.Err()
	}, worker.Price(0.01))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitUntil(t, "worker "+id+" to register", 10*time.Second, func() bool {
		ws, err := c.Workers(ctx)
		return err == nil && slices.ContainsFunc(ws, func(info protocol.WorkerInfo) bool { return info.WorkerID == id })
	})
}

// hookReceiver is a webhook endpoint that answers the first failFirst
// deliveries with 503 and the rest with 200.
type hookReceiver struct {
	url       string
	mu        sync.Mutex
	failFirst int
	got       []protocol.WebhookPayload
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	h := &hookReceiver{failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p protocol.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failFirst > 0 {
			h.failFirst--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.got = append(h.got, p)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

func (h *hookReceiver) received() []protocol.WebhookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func TestHistoryAuditSQLite(t *testing.T) {
	t.Parallel()
	testAudit(t, "sqlite:"+filepath.Join(t.TempDir(), "history.db"))
}

func TestHistoryAuditPostgres(t *testing.T) {
	t.Parallel()
	testAudit(t, testenv.PostgresSchemaURL(t, testenv.URL(t, testenv.PostgresVar), "avto_orch_audit"))
}

// testAudit reads retries, timeouts, cancellations and webhook attempts
// back from the history database over HTTP, then lists the jobs by
// blueprint and creation time once the live store has expired them.
func testAudit(t *testing.T, uri string) {
	hooks := newHookReceiver(t, 1)
	// The live store keeps ended jobs for 3 s: long enough for the
	// webhook's second attempt (2 s after the first).
	o, url := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second, HistoryURI: uri, WebhookAllowedHosts: []string{"127.0.0.1/32"},
		RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond,
		Store:   memory.New(memory.Options{Retention: 3 * time.Second}),
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
	}, append(taskBlueprints(), pipeline())...)
	ctx := context.Background()
	c, _ := client.New(url, "acme-token")
	startTaskWorker(t, url, "w1", c)

	// Three jobs, with a mark between creations for the time filters.
	mark := func() time.Time {
		time.Sleep(10 * time.Millisecond)
		defer time.Sleep(10 * time.Millisecond)
		return time.Now()
	}
	stranded, err := c.CreateJob(ctx, "/jobs/stranded", nil)
	if err != nil {
		t.Fatal(err)
	}
	mark1 := mark()
	flaky, err := c.CreateJob(ctx, "/jobs/flaky", nil, client.WithWebhook(hooks.url))
	if err != nil {
		t.Fatal(err)
	}
	mark2 := mark()
	hold, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the held task to run", 10*time.Second, func() bool {
		j, err := c.Job(ctx, hold)
		return err == nil && len(j.Tasks) == 1 && j.Tasks[0].State == "running"
	})
	if err := c.Cancel(ctx, hold); err != nil {
		t.Fatal(err)
	}
	want := map[string]protocol.JobStatus{stranded: protocol.StatusFailed, flaky: protocol.StatusFinished, hold: protocol.StatusCancelled}
	for id, status := range want {
		j, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
		if err != nil || j.Status != status {
			t.Fatalf("job %s: %+v %v, want %s", id, j, err, status)
		}
	}
	testenv.WaitUntil(t, "the webhook's second attempt", 10*time.Second, func() bool { return len(hooks.received()) == 1 })

	// history returns the job's events of one type once it has n of them.
	history := func(id, typ string, n int) []client.HistoryEvent {
		t.Helper()
		var found []client.HistoryEvent
		testenv.WaitUntil(t, fmt.Sprintf("%d %s events of job %s", n, typ, id), 10*time.Second, func() bool {
			events, err := c.History(ctx, id)
			if err != nil {
				return false
			}
			found = slices.DeleteFunc(events, func(e client.HistoryEvent) bool { return e.EventType != typ })
			return len(found) >= n
		})
		if len(found) != n {
			t.Errorf("job %s has %d %s events, want %d: %+v", id, len(found), typ, n, found)
		}
		return found
	}
	detail := func(e client.HistoryEvent) map[string]any { d, _ := e.Fields["detail"].(map[string]any); return d }

	// The retry: the worker's transient failure, then attempt 2.
	retry := history(flaky, "task_retry", 1)[0]
	if d := detail(retry); retry.Fields["worker_id"] != "w1" || d["code"] != protocol.ErrTransient || d["attempt"] != 2.0 || d["type"] != "flaky" {
		t.Errorf("retry event %+v", retry.Fields)
	}
	results := history(flaky, "task_result", 2)
	if detail(results[0])["status"] != "failure" || detail(results[1])["status"] != "success" {
		t.Errorf("task results %v, %v", detail(results[0]), detail(results[1]))
	}
	// Each webhook attempt: refused once, then delivered.
	attempts := history(flaky, "webhook_attempt", 2)
	for i, w := range []struct {
		outcome string
		code    float64
	}{{"retrying", 503}, {"delivered", 200}} {
		if d := detail(attempts[i]); d["outcome"] != w.outcome || d["status_code"] != w.code || d["attempt"] != float64(i+1) || d["event"] != "job_finished" {
			t.Errorf("webhook attempt %d: %v, want %s (%v)", i+1, d, w.outcome, w.code)
		}
	}
	// The dispatch timeout.
	timeout := history(stranded, "task_timeout", 1)[0]
	if d := detail(timeout); d["kind"] != "dispatch" || d["type"] != "nobody" {
		t.Errorf("timeout event %+v", timeout.Fields)
	}
	if ended := history(stranded, "job_ended", 1)[0]; detail(ended)["status"] != "failed" {
		t.Errorf("stranded job ended %v", detail(ended))
	}
	// The cancellation: the running task is called off, the job ends cancelled.
	if ct := history(hold, "cancel_task", 1)[0]; ct.Fields["worker_id"] != "w1" {
		t.Errorf("cancel_task event %+v", ct.Fields)
	}
	if ended := history(hold, "job_ended", 1)[0]; detail(ended)["status"] != "cancelled" {
		t.Errorf("held job ended %v", detail(ended))
	}

	// Once the live store has forgotten the jobs, the list comes from
	// history, filtered by blueprint and creation time.
	testenv.WaitUntil(t, "the live store to expire the jobs", 15*time.Second, func() bool {
		for id := range want {
			if _, err := o.Job(ctx, id); err == nil {
				return false
			}
		}
		return true
	})
	for _, tc := range []struct {
		name string
		opts client.ListOptions
		want []string // newest first
	}{
		{"all", client.ListOptions{}, []string{hold, flaky, stranded}},
		{"blueprint flaky", client.ListOptions{Blueprint: "flaky"}, []string{flaky}},
		{"blueprint stranded", client.ListOptions{Blueprint: "stranded"}, []string{stranded}},
		{"from mark1 to mark2", client.ListOptions{From: mark1, To: mark2}, []string{flaky}},
		{"to mark1", client.ListOptions{To: mark1}, []string{stranded}},
		{"from mark1", client.ListOptions{From: mark1}, []string{hold, flaky}},
		{"from mark2", client.ListOptions{From: mark2}, []string{hold}},
		{"blueprint pipeline to mark2", client.ListOptions{Blueprint: "pipeline", To: mark2}, nil},
		{"blueprint flaky, finished, from mark1", client.ListOptions{Blueprint: "flaky", Status: protocol.StatusFinished, From: mark1}, []string{flaky}},
		{"from mark1, page of 1", client.ListOptions{From: mark1, Limit: 1}, []string{hold}},
	} {
		page, err := c.Jobs(ctx, tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, j := range page.Jobs {
			got = append(got, j.ID)
			if j.Status != want[j.ID] {
				t.Errorf("%s: job %s listed as %s, want %s", tc.name, j.ID, j.Status, want[j.ID])
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: listed %v, want %v", tc.name, got, tc.want)
		}
	}
	// The page of 1 leads to the next job in the range, and no further.
	first, _ := c.Jobs(ctx, client.ListOptions{From: mark1, Limit: 1})
	next, err := c.Jobs(ctx, client.ListOptions{From: mark1, Limit: 1, Cursor: first.NextCursor})
	if err != nil || len(next.Jobs) != 1 || next.Jobs[0].ID != flaky {
		t.Errorf("second page from mark1: %+v %v", next, err)
	}
}

// TestHistoryNoneListsLiveJobs: with history off (HISTORY_DATABASE_URI=none)
// jobs are listed from the live store and the history route says it is off.
func TestHistoryNoneListsLiveJobs(t *testing.T) {
	t.Parallel()
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), HistoryURI: "none",
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}}, pipeline())
	ctx := context.Background()
	c, _ := client.New(url, "acme-token")
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.Jobs(ctx, client.ListOptions{})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != id {
		t.Fatalf("jobs with history off: %+v %v", page, err)
	}
	var apiErr *client.Error
	if _, err := c.History(ctx, id); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotImplemented {
		t.Fatalf("history route with history off: %v", err)
	}
}
