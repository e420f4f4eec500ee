package console_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// workBlueprint sends one task to a worker.
func workBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("work").Endpoint("v1", "/jobs/work")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "echo", Params: echoParams(c)})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	bp.End("finished", nil)
	bp.End("failed", nil)
	return bp
}

// echoParams passes the job's input that startWorker's handler reads.
func echoParams(c *blueprint.Context) map[string]any {
	return map[string]any{"ms": c.Input("ms"), "fail": c.Input("fail"), "fail_once": c.Input("fail_once")}
}

// startWorker runs echo-worker, whose echo task waits ms, then fails
// (permanently) when fail is set, or when fail_once is and it is the
// job's first task, else succeeds.
func startWorker(t *testing.T, base string) {
	t.Helper()
	startWorkerID(t, base, "echo-worker")
}

// startWorkerID starts a worker with the echo skill until the test ends.
func startWorkerID(t *testing.T, base, id string) {
	t.Helper()
	w, err := worker.New(worker.Config{ID: id, Token: "worker-token", Orchestrators: []worker.Orchestrator{{URL: base}},
		Logger: baseConfig().Logger, PollTimeout: time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Resources: worker.Resources{DisableDetection: true}})
	if err != nil {
		t.Fatal(err)
	}
	var failedOnce sync.Map // job id → true: fail_once failed it
	w.Handle("echo", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		if ms, ok := task.Params()["ms"].(float64); ok {
			select { // the browser test watches the job while it runs
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return worker.Result{}, ctx.Err()
			}
		}
		if fail, _ := task.Params()["fail"].(bool); fail {
			return worker.Result{}, worker.Permanent(errors.New("the test asked for a failure"))
		}
		if once, _ := task.Params()["fail_once"].(bool); once {
			if _, failed := failedOnce.LoadOrStore(task.JobID(), true); !failed {
				return worker.Result{}, worker.Permanent(errors.New("the test asked for one failure"))
			}
		}
		return worker.Result{Data: map[string]any{"echoed": true}}, nil
	}, worker.Price(0.25))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestJobPageWithHistorySQLite(t *testing.T) {
	testJobPageWithHistory(t, "sqlite:"+filepath.Join(t.TempDir(), "history.db"))
}

func TestJobPageWithHistoryPostgres(t *testing.T) {
	testJobPageWithHistory(t, testenv.PostgresSchemaURL(t, testenv.URL(t, testenv.PostgresVar), "avto_console_test"))
}

// testJobPageWithHistory: the timeline, the task attempt with its worker,
// price and dispatch reason, and a job the live store has expired read
// back from history, still only by its owner.
func testJobPageWithHistory(t *testing.T, uri string) {
	cfg := baseConfig()
	cfg.HistoryURI, cfg.GlobalWorkerToken = uri, "worker-token"
	cfg.Store = memory.New(memory.Options{Retention: 200 * time.Millisecond})
	base := serve(t, cfg, workBlueprint())
	startWorker(t, base)
	status, body := apiCall(t, base, "POST", "/api/v1/jobs/work", aliceToken, map[string]any{"initial_data": map[string]any{"n": 1}})
	if status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, body)
	}
	id := strings.Split(strings.Split(string(body), `"job_id":"`)[1], `"`)[0]
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	b := newBrowser(t, base)
	b.login(aliceToken)
	status, _, page := b.get("/console/jobs/" + id)
	if status != http.StatusOK {
		t.Fatalf("job page: %d %.300s", status, page)
	}
	for _, want := range []string{"task_dispatched", "task_result", "job_ended", "echo-worker", `<td class="wide">0.25</td>`, "candidates", "&#34;echoed&#34;: true",
		"Path taken: start → finished"} {
		if !strings.Contains(page, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}
	if nodes := graphNodes(t, page); nodes["start"] != "visited" || nodes["finished"] != "current" || nodes["failed"] != "" {
		t.Errorf("graph nodes %v, want start visited, finished current, failed neither", nodes)
	}
	bob := newBrowser(t, base)
	bob.login(bobToken)
	if status, _, _ := bob.get("/console/jobs/" + id); status != http.StatusNotFound {
		t.Fatalf("bob opens alice's job: %d", status)
	}
	_, _, list := b.get("/console/jobs?status=finished")
	if !strings.Contains(list, id) {
		t.Fatal("the finished job is not listed")
	}
	// A time range (history only): the job was created in the past hour,
	// not in the next one.
	now := time.Now().UTC()
	hourAgo, hourOn := now.Add(-time.Hour).Format("2006-01-02T15:04"), now.Add(time.Hour).Format("2006-01-02T15:04")
	if _, _, list := b.get("/console/jobs?from=" + hourAgo + "&to=" + hourOn); !strings.Contains(list, id) {
		t.Fatal("the job is not listed in the hour around its creation")
	}
	if _, _, list := b.get("/console/jobs?from=" + hourOn); strings.Contains(list, id) {
		t.Fatal("the job is listed as created in the next hour")
	}
	if status, _, _ := b.get("/console/jobs?from=yesterday"); status != http.StatusBadRequest {
		t.Fatalf("from=yesterday: %d", status)
	}
	if _, _, list := bob.get("/console/jobs"); strings.Contains(list, id) {
		t.Fatal("bob's list shows alice's job")
	}
	_, _, workers := b.get("/console/workers")
	for _, want := range []string{"echo-worker", "echo", "0.25", `<span class="reputation">1.000</span>`} {
		if !strings.Contains(workers, want) {
			t.Errorf("the workers page lacks %q", want)
		}
	}
	// A failure: its error on the job's page, the worker's reputation down.
	status, body = apiCall(t, base, "POST", "/api/v1/jobs/work", aliceToken, map[string]any{"initial_data": map[string]any{"fail": true}})
	if status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, body)
	}
	failed := strings.Split(strings.Split(string(body), `"job_id":"`)[1], `"`)[0]
	waitStatus(t, base, aliceToken, failed, protocol.StatusFailed)
	if _, _, page := b.get("/console/jobs/" + failed); !strings.Contains(page, "PERMANENT_ERROR: the test asked for a failure") {
		t.Errorf("the failed job's page lacks the task's error: %.3000s", page)
	}
	if _, _, workers := b.get("/console/workers"); strings.Contains(workers, `<span class="reputation">1.000</span>`) {
		t.Error("the worker's reputation did not fall after a failure")
	}
}
