package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// postgresViaProxy returns a PostgreSQL history URI (a schema of its own)
// that goes through a proxy the test can cut.
func postgresViaProxy(t *testing.T) (*testenv.Proxy, string) {
	t.Helper()
	uri := testenv.PostgresSchemaURL(t, testenv.URL(t, testenv.PostgresVar), "avto_outage")
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.NewProxy(t, u.Host)
	u.Host = p.Addr()
	return p, u.String()
}

// The history database goes away while jobs run: jobs keep running to
// their end (their events wait in the outbox), history reads answer 503
// instead of hanging, and once the database is back every event of every
// job is written.
func TestHistoryOutageStallsNothingAndLosesNothing(t *testing.T) {
	t.Parallel()
	proxy, uri := postgresViaProxy(t)
	_, base := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second, HistoryURI: uri,
		RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond,
		MinReputation: 1e-9, // the transient failures must not bench the only worker
		Store:         memory.New(memory.Options{}),
		Clients:       []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
	}, taskBlueprints()...)
	c, _ := client.New(base, "acme-token")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startTaskWorker(t, base, "w1", c)

	before, err := c.CreateJob(ctx, "/jobs/flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Wait(ctx, before, client.PollEvery(20*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job before the outage: %+v %v", j, err)
	}

	proxy.Cut()
	// Each job fails once transiently and is retried: results, retry
	// timers and dispatches all go on without the history database.
	var ids []string
	for range 8 {
		id, err := c.CreateJob(ctx, "/jobs/flaky", nil)
		if err != nil {
			t.Fatalf("create during the history outage: %v", err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		j, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
		if err != nil || j.Status != protocol.StatusFinished {
			j, _ = c.Job(context.Background(), id)
			t.Fatalf("job %s during the history outage: %+v %v", id, j, err)
		}
	}
	if _, err := c.History(ctx, ids[0]); !errors.Is(err, client.ErrServer) {
		t.Fatalf("history read while the database is down: %v, want a 503", err)
	} else if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.StatusCode != 503 {
		t.Fatalf("history read while the database is down: %v, want a 503", err)
	}

	proxy.Restore()
	for _, id := range append(ids, before) {
		testenv.WaitUntil(t, "the history of job "+id, 30*time.Second, func() bool {
			events, err := c.History(ctx, id)
			if err != nil {
				return false
			}
			var types []string
			for _, e := range events {
				types = append(types, e.EventType)
			}
			return slices.Contains(types, "job_created") && slices.Contains(types, "task_retry") &&
				slices.Contains(types, "task_result") && slices.Contains(types, "job_ended")
		})
	}
	// Written once each, although batches were tried many times.
	events, err := c.History(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		id, _ := e.Fields["event_id"].(string)
		if seen[id] {
			t.Fatalf("event %s written twice: %+v", id, events)
		}
		seen[id] = true
	}
}

// The history database is down and the orchestrator is killed (SIGKILL)
// with events not yet written: a new orchestrator on the same Redis writes
// every one of them once the database is back. The events are read from
// the outbox stream before the restart, so the check covers every event
// the first process committed.
func TestHistoryOutageAndCrashLoseNoEvent(t *testing.T) {
	t.Parallel()
	redisURL, prefix := redisForTest(t)
	proxy, uri := postgresViaProxy(t)
	addr := loopbackAddr(t)
	first := startHelper(t, addr, redisURL, prefix, "HISTORY_DATABASE_URI="+uri)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ex := newExecutions()
	startFlowWorker(t, ctx, "w1", "http://"+addr, ex, "work", "branch", "kidwork")
	c, _ := client.New("http://"+addr, "ct")
	testenv.WaitUntil(t, "the worker to register", 30*time.Second, func() bool {
		ws, err := c.Workers(ctx)
		return err == nil && len(ws) == 1
	})

	proxy.Cut()
	var ids []string
	for range 10 {
		id, err := c.CreateJob(ctx, "/jobs/flow", map[string]any{"ms": 5})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for id, j := range waitJobs(t, ctx, c, ids, 2*time.Minute) {
		if j.Status != protocol.StatusFinished {
			t.Fatalf("job %s ended %s during the history outage: %s", id, j.Status, j.ErrorMessage)
		}
	}
	first.kill()

	// What the first process committed, as the outbox holds it.
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	entries, err := rdb.XRange(ctx, "{"+prefix+"}:outbox", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	committed := map[string]string{} // event id -> job id
	for _, e := range entries {
		var ev struct {
			ID    string `json:"event_id"`
			JobID string `json:"job_id"`
		}
		data, _ := e.Values["e"].(string)
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("outbox entry %s: %v", e.ID, err)
		}
		if ev.JobID != "" {
			committed[ev.ID] = ev.JobID
		}
	}
	if len(committed) < 10*5 {
		t.Fatalf("only %d job events in the outbox for 10 jobs", len(committed))
	}

	proxy.Restore()
	startHelper(t, addr, redisURL, prefix, "HISTORY_DATABASE_URI="+uri)
	written := map[string]bool{}
	jobsOf := map[string]bool{}
	for _, job := range committed {
		jobsOf[job] = true
	}
	testenv.WaitUntil(t, "every committed event in history", time.Minute, func() bool {
		for job := range jobsOf {
			events, err := c.History(ctx, job)
			if err != nil {
				return false
			}
			for _, e := range events {
				if id, ok := e.Fields["event_id"].(string); ok {
					written[id] = true
				}
			}
		}
		for id := range committed {
			if !written[id] {
				return false
			}
		}
		return true
	})
}
