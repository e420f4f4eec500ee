package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
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
		matches, err := redisstore.DeploymentKeyPatterns(ctx, rdb, prefix)
		if err != nil {
			return
		}
		for _, match := range matches {
			iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
		}
	})
	return url, prefix
}

// clusterForTest returns a Redis Cluster's URL, a fresh key prefix
// (deleted when the test ends) and the environment that makes a helper
// orchestrator use the cluster with 16 shards.
func clusterForTest(t *testing.T) (url, prefix string, env []string) {
	t.Helper()
	addrs := testenv.RedisCluster(t)
	prefix = fmt.Sprintf("avto-e2e-%d", time.Now().UnixNano())
	testenv.CleanCluster(t, addrs, redisstore.KeyPatterns(prefix, 16)...)
	return testenv.ClusterURL(addrs), prefix, []string{"REDIS_CLUSTER=true", "REDIS_SHARDS=16"}
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
	t.Parallel()
	redisURL, prefix := redisForTest(t)
	twoOrchestrators(t, redisURL, prefix)
}

// TestTwoOrchestratorsShareACluster is TestTwoOrchestratorsShareOneRedis
// on a Redis Cluster of three masters, the live state in 16 shards.
func TestTwoOrchestratorsShareACluster(t *testing.T) {
	t.Parallel()
	redisURL, prefix, env := clusterForTest(t)
	twoOrchestrators(t, redisURL, prefix, env...)
}

func twoOrchestrators(t *testing.T, redisURL, prefix string, env ...string) {
	a := startHelper(t, loopbackAddr(t), redisURL, prefix, env...)
	b := startHelper(t, loopbackAddr(t), redisURL, prefix, env...)
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
	t.Parallel()
	redisURL, prefix := redisForTest(t)
	crashLosesNothing(t, redisURL, prefix)
}

// TestOrchestratorCrashLosesNothingOnACluster is
// TestOrchestratorCrashLosesNothing on a Redis Cluster of three masters,
// the live state in 16 shards.
func TestOrchestratorCrashLosesNothingOnACluster(t *testing.T) {
	t.Parallel()
	redisURL, prefix, env := clusterForTest(t)
	crashLosesNothing(t, redisURL, prefix, env...)
}

func crashLosesNothing(t *testing.T, redisURL, prefix string, env ...string) {
	addr := loopbackAddr(t)
	first := startHelper(t, addr, redisURL, prefix, env...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := newExecutions()
	startFlowWorker(t, ctx, "w1", "http://"+addr, ex, "work", "branch", "kidwork")
	c, _ := client.New("http://"+addr, "ct")
	testenv.WaitUntil(t, "the worker to register", 30*time.Second, func() bool {
		ws, err := c.Workers(ctx)
		return err == nil && len(ws) == 1
	})
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
	startHelper(t, addr, redisURL, prefix, env...)
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
	t.Parallel()
	testenv.URL(t, testenv.RedisVar) // the suite needs Redis tools
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	dir := t.TempDir()
	port := testenv.FreePort(t)
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
		Logger: logOnFailure(t), RedisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", port),
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
	testenv.WaitUntil(t, "the worker to register", 30*time.Second, func() bool {
		ws, err := c.Workers(ctx)
		return err == nil && len(ws) == 1
	})
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
	testenv.WaitUntil(t, "readiness after Redis came back", 30*time.Second, func() bool {
		code, _ := httpGet(url + "/_public/ready")
		return code == http.StatusOK
	})
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

// rawWorker speaks the worker protocol by hand, so that a test chooses the
// orchestrator each message goes to.
type rawWorker struct {
	t     *testing.T
	id    string
	token string
}

// signed returns msg with a timestamp and its signature, as JSON.
func (w rawWorker) signed(msg map[string]any, ts int64) []byte {
	w.t.Helper()
	msg["timestamp"] = ts
	sig, err := protocol.Sign(msg, w.token)
	if err != nil {
		w.t.Fatal(err)
	}
	msg["security"] = map[string]any{"signature": sig, "signer_id": w.id}
	body, err := json.Marshal(msg)
	if err != nil {
		w.t.Fatal(err)
	}
	return body
}

func (w rawWorker) do(method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(protocol.HeaderWorkerToken, w.token)
	req.Header.Set(protocol.HeaderWorkerID, w.id)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// register registers the worker at base with skills.
func (w rawWorker) register(base string, skills ...string) {
	w.t.Helper()
	var supported []map[string]any
	for _, s := range skills {
		supported = append(supported, map[string]any{"name": s})
	}
	body := w.signed(map[string]any{"worker_id": w.id, "supported_skills": supported}, time.Now().Unix())
	if code, out, err := w.do("POST", base+protocol.PathRegister, body); err != nil || code != http.StatusOK {
		w.t.Fatalf("register at %s: %d %s %v", base, code, out, err)
	}
}

// poll long-polls base for a task, waiting up to wait.
func (w rawWorker) poll(base string, wait time.Duration) (*protocol.TaskPayload, error) {
	code, out, err := w.do("GET", fmt.Sprintf("%s/_worker/workers/%s/tasks/next?timeout=%g", base, w.id, wait.Seconds()), nil)
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusNoContent:
		return nil, nil
	case code != http.StatusOK:
		return nil, fmt.Errorf("poll: %d %s", code, out)
	}
	var task protocol.TaskPayload
	return &task, json.Unmarshal(out, &task)
}

// TestLongPollWokenAcrossOrchestrators: a worker long-polls orchestrator A
// with a 30 s timeout; a job created on orchestrator B reaches it well
// before that.
func TestLongPollWokenAcrossOrchestrators(t *testing.T) {
	t.Parallel()
	redisURL, prefix := redisForTest(t)
	a := startHelper(t, loopbackAddr(t), redisURL, prefix, "AVTO_HELPER_POLL_TIMEOUT=30s")
	b := startHelper(t, loopbackAddr(t), redisURL, prefix, "AVTO_HELPER_POLL_TIMEOUT=30s")
	w := rawWorker{t: t, id: "w-long", token: "tok"}
	w.register("http://"+a.addr, "rare")

	type polled struct {
		task *protocol.TaskPayload
		err  error
		at   time.Time
	}
	got := make(chan polled, 1)
	go func() {
		task, err := w.poll("http://"+a.addr, 30*time.Second)
		got <- polled{task, err, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond) // the poll waits in A
	select {
	case p := <-got:
		t.Fatalf("the poll returned before any job: %+v %v", p.task, p.err)
	default:
	}
	cb, _ := client.New("http://"+b.addr, "ct")
	created := time.Now()
	id, err := cb.CreateJob(context.Background(), "/jobs/late", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.err != nil || p.task == nil || p.task.JobID != id || p.task.Type != "rare" {
			t.Fatalf("the poll on A answered %+v %v, want the task of job %s", p.task, p.err, id)
		}
		latency := p.at.Sub(created)
		if latency > 5*time.Second {
			t.Fatalf("the task created on B reached the poll on A after %s", latency)
		}
		t.Logf("job created on B, task received by the poll on A after %s", latency)
	case <-time.After(5 * time.Second):
		t.Fatal("the poll on A was not woken within 5 s of the job's creation on B (its timeout is 30 s)")
	}
}

// TestResultAppliedOnceAcrossOrchestrators: one task result, sent to A and
// (as a worker's retry, signed anew) to B at the same time, is applied once:
// one answer is accepted, the other ignored as a duplicate, and the job
// moves on once.
func TestResultAppliedOnceAcrossOrchestrators(t *testing.T) {
	t.Parallel()
	redisURL, prefix := redisForTest(t)
	a := startHelper(t, loopbackAddr(t), redisURL, prefix)
	b := startHelper(t, loopbackAddr(t), redisURL, prefix)
	urlA, urlB := "http://"+a.addr, "http://"+b.addr
	w := rawWorker{t: t, id: "w-twice", token: "tok"}
	w.register(urlA, "work")
	ca, _ := client.New(urlA, "ct")
	ctx := context.Background()
	_, beforeA := scrape(t, urlA)
	_, beforeB := scrape(t, urlB)
	id, err := ca.CreateJob(ctx, "/jobs/flow", map[string]any{"ms": 5})
	if err != nil {
		t.Fatal(err)
	}
	task, err := w.poll(urlA, 5*time.Second)
	if err != nil || task == nil || task.JobID != id || task.Type != "work" {
		t.Fatalf("poll: %+v %v", task, err)
	}

	// The same result twice, with different timestamps (and so different
	// signatures), as a worker retrying a send it believes lost.
	now := time.Now().Unix()
	result := func(ts int64) []byte {
		return w.signed(map[string]any{"job_id": id, "task_id": task.TaskID, "worker_id": w.id, "status": "success",
			"data": map[string]any{"by": w.id}}, ts)
	}
	bodies := [][]byte{result(now), result(now - 1)}
	answers := make([]protocol.ResultResponse, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, base := range []string{urlA, urlB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, out, err := w.do("POST", base+protocol.PathResult, bodies[i])
			if err != nil || code != http.StatusOK || json.Unmarshal(out, &answers[i]) != nil {
				t.Errorf("result to %s: %d %s %v", base, code, out, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var accepted, ignored []protocol.ResultResponse
	for _, r := range answers {
		switch r.Status {
		case protocol.ResultAccepted:
			accepted = append(accepted, r)
		case protocol.ResultIgnored:
			ignored = append(ignored, r)
		}
	}
	if len(accepted) != 1 || len(ignored) != 1 || accepted[0].Transition != "success_transition" || ignored[0].Reason != protocol.IgnoredDuplicateResult {
		t.Fatalf("answers from A and B: %+v; want one accepted (success_transition) and one ignored (%s)", answers, protocol.IgnoredDuplicateResult)
	}
	// The very same bytes again are a replay, refused before they reach the job.
	if code, out, _ := w.do("POST", urlB+protocol.PathResult, bodies[0]); code != http.StatusConflict {
		t.Errorf("a replayed result: %d %s, want 409", code, out)
	}

	// One transition: the job left "start" once and fanned out once (three
	// branch tasks, which wait: no worker has their skill).
	var j *protocol.Job
	testenv.WaitUntil(t, "the fan-out", 10*time.Second, func() bool {
		j, err = ca.Job(ctx, id)
		return err == nil && j.Status == protocol.StatusWaitingParallel
	})
	branches := 0
	for _, tk := range j.Tasks {
		if tk.Type == "branch" {
			branches++
		}
	}
	works := 0
	for _, d := range j.Dispatches {
		if d.Type == "work" {
			works++
		}
	}
	if j.CurrentState != "fan" || branches != 3 || len(j.Tasks) != 3 || works != 1 || j.StateHistory["by"] != w.id {
		t.Fatalf("after the result: state %s, tasks %+v, dispatches %+v, state_history %v", j.CurrentState, j.Tasks, j.Dispatches, j.StateHistory)
	}
	// Across both processes: one result applied, one ignored as a duplicate.
	_, afterA := scrape(t, urlA)
	_, afterB := scrape(t, urlB)
	moved := func(family string, labels map[string]string) float64 {
		return total(afterA, family, labels) - total(beforeA, family, labels) + total(afterB, family, labels) - total(beforeB, family, labels)
	}
	if n := moved("avtomatika_task_results_total", map[string]string{"type": "work"}); n != 1 {
		t.Errorf("%v results applied over A and B, want 1", n)
	}
	if n := moved("avtomatika_task_results_ignored_total", map[string]string{"reason": protocol.IgnoredDuplicateResult}); n != 1 {
		t.Errorf("%v results ignored as duplicates over A and B, want 1", n)
	}
}
