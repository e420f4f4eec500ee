package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// executions counts how many times each task ran, over every worker.
type executions struct {
	mu     sync.Mutex
	byTask map[string]int
	byJob  map[string][]string // job → workers that ran its tasks
}

func newExecutions() *executions {
	return &executions{byTask: map[string]int{}, byJob: map[string][]string{}}
}

func (e *executions) add(task *worker.Task, workerID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byTask[task.ID()]++
	e.byJob[task.JobID()] = append(e.byJob[task.JobID()], workerID)
}

func (e *executions) check(t *testing.T, want int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	total := 0
	for id, n := range e.byTask {
		if n != 1 {
			t.Errorf("task %s ran %d times", id, n)
		}
		total += n
	}
	if total != want {
		t.Errorf("%d task executions, want %d", total, want)
	}
}

// startFlowWorker runs an SDK worker for the flow tasks against url until
// ctx ends.
func startFlowWorker(t *testing.T, ctx context.Context, id, url string, ex *executions, skills ...string) {
	t.Helper()
	w, err := worker.New(worker.Config{
		ID: id, Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(), MaxConcurrentTasks: 8,
		PollTimeout: 2 * time.Second, PollErrorDelay: 100 * time.Millisecond, PollBackoffMax: 500 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond, Resources: worker.Resources{DisableDetection: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skills {
		w.Handle(s, func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			ex.add(task, id)
			ms, _ := task.Params()["ms"].(float64)
			select {
			case <-time.After(time.Duration(max(ms, 5)) * time.Millisecond):
			case <-ctx.Done():
				return worker.Result{}, ctx.Err()
			}
			return worker.Result{Data: map[string]any{"by": id}}, nil
		}, worker.Price(0.01))
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { <-done })
}

func redisForTest(t *testing.T) (url, prefix string) {
	t.Helper()
	url = testenv.URL(t, testenv.RedisVar)
	prefix = fmt.Sprintf("avto-e2e-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			return
		}
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "{"+prefix+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return url, prefix
}

func waitJobs(t *testing.T, ctx context.Context, c *client.Client, ids []string, timeout time.Duration) map[string]*protocol.Job {
	t.Helper()
	out := map[string]*protocol.Job{}
	deadline := time.Now().Add(timeout)
	for len(out) < len(ids) {
		for _, id := range ids {
			if out[id] != nil {
				continue
			}
			j, err := c.Job(ctx, id)
			if err == nil && j.Status.Terminal() {
				out[id] = j
			}
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				if out[id] == nil {
					j, err := c.Job(ctx, id)
					t.Fatalf("job %s stuck: %+v %v (%d of %d ended)", id, j, err, len(out), len(ids))
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out
}

// TestTwoOrchestratorsShareOneRedis: two orchestrator processes on one Redis,
// workers connected to either, 200 jobs created alternately on both: all
// finish, every task runs exactly once, none is stuck.
func TestTwoOrchestratorsShareOneRedis(t *testing.T) {
	redisURL, prefix := redisForTest(t)
	a := startHelper(t, loopbackAddr(t), redisURL, prefix)
	b := startHelper(t, loopbackAddr(t), redisURL, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := newExecutions()
	for _, w := range []struct{ id, addr string }{{"wa1", a.addr}, {"wa2", a.addr}, {"wb1", b.addr}, {"wb2", b.addr}} {
		startFlowWorker(t, ctx, w.id, "http://"+w.addr, ex, "work", "branch", "kidwork")
	}
	ca, _ := client.New("http://"+a.addr, "ct")
	cb, _ := client.New("http://"+b.addr, "ct")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ws, err := ca.Workers(ctx); err == nil && len(ws) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workers did not register")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ids []string
	for i := range 200 {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		id, err := c.CreateJob(ctx, "/jobs/flow", map[string]any{"ms": 5})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	jobs := waitJobs(t, ctx, ca, ids, 2*time.Minute)
	for id, j := range jobs {
		if j.Status != protocol.StatusFinished || j.StateHistory["branches_ok"] != 3.0 {
			t.Fatalf("job %s: %s %q %v", id, j.Status, j.ErrorMessage, j.StateHistory["branches_ok"])
		}
	}
	ex.check(t, 200*5)
	// Work crossed processes: some jobs created on one orchestrator ran on
	// workers polling the other.
	crossed := 0
	ex.mu.Lock()
	for i, id := range ids {
		fromA := i%2 == 0
		for _, w := range ex.byJob[id] {
			if fromA == strings.HasPrefix(w, "wb") {
				crossed++
				break
			}
		}
	}
	ex.mu.Unlock()
	if crossed == 0 {
		t.Fatal("no job ran on a worker of the other orchestrator")
	}
}

// TestOrchestratorCrashLosesNothing kills the only orchestrator with SIGKILL
// while jobs wait for workers, run parallel branches and a sub-blueprint; a
// new one on the same Redis brings every job to its end, and no task runs
// twice.
func TestOrchestratorCrashLosesNothing(t *testing.T) {
	redisURL, prefix := redisForTest(t)
	addr := loopbackAddr(t)
	first := startHelper(t, addr, redisURL, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := newExecutions()
	startFlowWorker(t, ctx, "w1", "http://"+addr, ex, "work", "branch", "kidwork")
	c, _ := client.New("http://"+addr, "ct")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ws, err := c.Workers(ctx); err == nil && len(ws) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker did not register")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var flows, lates []string
	for range 3 {
		id, err := c.CreateJob(ctx, "/jobs/late", nil)
		if err != nil {
			t.Fatal(err)
		}
		lates = append(lates, id)
	}
	seen := map[protocol.JobStatus]bool{}
	for deadline := time.Now().Add(60 * time.Second); !(seen[protocol.StatusWaitingParallel] && seen[protocol.StatusWaitingForSubJob]); {
		if len(flows) < 12 {
			id, err := c.CreateJob(ctx, "/jobs/flow", map[string]any{"ms": 700})
			if err != nil {
				t.Fatal(err)
			}
			flows = append(flows, id)
		}
		time.Sleep(150 * time.Millisecond)
		for _, id := range flows {
			if j, err := c.Job(ctx, id); err == nil {
				seen[j.Status] = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw jobs in parallel branches and in a sub-blueprint at once: %v", seen)
		}
	}
	first.kill() // SIGKILL, mid-flight
	startHelper(t, addr, redisURL, prefix)
	startFlowWorker(t, ctx, "w-rare", "http://"+addr, ex, "rare")
	jobs := waitJobs(t, ctx, c, append(append([]string{}, flows...), lates...), 2*time.Minute)
	for id, j := range jobs {
		if j.Status != protocol.StatusFinished {
			t.Errorf("job %s (%s) ended %s: %s", id, j.Blueprint, j.Status, j.ErrorMessage)
		}
	}
	ex.check(t, len(flows)*5+len(lates))
}

// TestRedisOutage runs an orchestrator on a private Redis that goes away
// and comes back: while it is down requests get clear 503s; afterwards the
// system recovers by itself.
func TestRedisOutage(t *testing.T) {
	testenv.URL(t, testenv.RedisVar) // the suite needs Redis tools
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	dir := t.TempDir()
	port := freeTCPPort(t)
	startRedis := func() *exec.Cmd {
		cmd := exec.Command(server, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
			"--appendfsync", "always", "--dir", dir, "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if c, err := redisPing(port); err == nil && c {
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("private redis-server did not start")
		return nil
	}
	rs := startRedis()
	defer func() { _ = rs.Process.Kill(); _ = rs.Wait() }()
	goredis.SetLogger(discardLogger{})

	o, err := orchestrator.New(orchestrator.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RedisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		GlobalWorkerToken: "tok", Clients: []orchestrator.Client{{Name: "c", Token: "ct"}}, PollTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(flowBlueprints()...); err != nil {
		t.Fatal(err)
	}
	addr := loopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = o.ListenAndServeAt(ctx, addr) }()
	defer func() { cancel(); <-served; _ = o.Close(context.Background()) }()
	url := "http://" + addr
	ex := newExecutions()
	startFlowWorker(t, ctx, "w1", url, ex, "work", "branch", "kidwork")
	c, _ := client.New(url, "ct")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ws, err := c.Workers(ctx); err == nil && len(ws) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker did not register")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before, err := c.CreateJob(ctx, "/jobs/flow", nil)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Wait(ctx, before, client.PollEvery(20*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job before the outage: %+v %v", j, err)
	}

	_ = rs.Process.Kill()
	_ = rs.Wait()
	_, err = c.CreateJob(ctx, "/jobs/flow", nil)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("create while Redis is down: %v", err)
	}
	if _, err := c.Job(ctx, before); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("get while Redis is down: %v", err)
	}
	if code, _ := httpGet(url + "/_public/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness while Redis is down: %d", code)
	}
	if code, _ := httpGet(url + "/_public/status"); code != http.StatusOK {
		t.Fatalf("liveness while Redis is down: %d", code)
	}

	rs = startRedis()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if code, _ := httpGet(url + "/_public/ready"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	after, err := c.CreateJob(ctx, "/jobs/flow", nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if j, err := c.Wait(wctx, after, client.PollEvery(50*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job after the outage: %+v %v", j, err)
	}
	if j, err := c.Job(ctx, before); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job from before the outage: %+v %v", j, err)
	}
	_ = os.Remove(filepath.Join(dir, "appendonly.aof"))
}

func redisPing(port int) (bool, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	return rdb.Ping(ctx).Err() == nil, nil
}
