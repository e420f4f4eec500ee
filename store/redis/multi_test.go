package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
	"github.com/avtomatika-ai/avtomatika-go/store/storetest"
)

// Two Stores on one prefix stand for two orchestrator processes.

func twoStores(t *testing.T) (a, b *redisstore.Store, url, prefix string) {
	url = testenv.URL(t, testenv.RedisVar)
	prefix = newPrefix(t, url)
	a = openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	b = openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	return a, b, url, prefix
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func job(id string) *store.Job {
	now := time.Now().UTC()
	return &store.Job{ID: id, Blueprint: "bp", Status: protocol.StatusPending, CurrentState: "start",
		Client: store.Client{Name: "c"}, CreatedAt: now, UpdatedAt: now}
}

func task(id, worker string, score float64) store.QueuedTask {
	return store.QueuedTask{JobID: "j", Worker: worker, Score: score,
		Run: store.TaskRun{ID: id, Spec: store.TaskSpec{Type: "x"}, State: store.TaskQueued}}
}

// enqueueVia queues tasks through a commit, as the engine does.
func enqueueVia(t *testing.T, s store.Store, tasks ...store.QueuedTask) {
	t.Helper()
	j := job(fmt.Sprintf("enq-%s-%d", tasks[0].Run.ID, time.Now().UnixNano()))
	if err := s.CreateJob(testCtx(t), j, store.Effects{Enqueue: tasks}); err != nil {
		t.Fatal(err)
	}
}

func TestNextReadyWokenByOtherProcess(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	got := make(chan string, 1)
	go func() {
		id, _, err := a.NextReady(ctx, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- id
	}()
	time.Sleep(100 * time.Millisecond)
	pushed := time.Now()
	if err := b.PushReady(ctx, "from-b"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != "from-b" {
			t.Fatalf("got %q", id)
		}
		t.Logf("woken %v after the push", time.Since(pushed))
	case <-time.After(5 * time.Second):
		t.Fatal("a NextReady on one store was not woken by a push on another")
	}
	// A push inside a commit wakes it too.
	go func() {
		id, _, _ := a.NextReady(ctx, time.Minute)
		got <- id
	}()
	time.Sleep(50 * time.Millisecond)
	if err := b.CreateJob(ctx, job("child"), store.Effects{Ready: []string{"child"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != "child" {
			t.Fatalf("got %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a commit's ready push did not wake the other store")
	}
}

func TestWaitersHoldNoConnections(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.PoolSize = 8
	rdb := goredis.NewClient(o)
	defer rdb.Close()
	ctx := testCtx(t)
	s, err := redisstore.New(ctx, rdb, redisstore.Options{Prefix: newPrefix(t, url)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const waiters = 64
	var wg sync.WaitGroup
	got := make(chan string, waiters)
	wctx, cancel := context.WithCancel(ctx)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if id, _, err := s.NextReady(wctx, time.Minute); err == nil {
				got <- id
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	// 64 waiters on a pool of 8: they wait without a connection each.
	for i := range waiters {
		if err := s.PushReady(ctx, fmt.Sprintf("j%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range waiters {
		select {
		case id := <-got:
			if seen[id] {
				t.Fatalf("%s handed out twice", id)
			}
			seen[id] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d waiters got a job", len(seen), waiters)
		}
	}
	cancel()
	wg.Wait()
	if st := rdb.PoolStats(); st.Timeouts > 0 {
		t.Fatalf("pool timeouts while waiting: %+v", st)
	}
}

func TestWatchSeesOtherProcess(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	wctx, cancel := context.WithCancel(ctx)
	ch, err := a.WatchQueues(wctx)
	if err != nil {
		t.Fatal(err)
	}
	enqueueVia(t, b, task("t1", "w-b", 1))
	select {
	case name := <-ch:
		if name != store.WorkerQueue("w-b") {
			t.Fatalf("got %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watcher on one store missed an enqueue on another")
	}
	// A new watcher hears of queues that already hold tasks.
	ch2, err := b.WatchQueues(wctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-ch2:
		if name != store.WorkerQueue("w-b") {
			t.Fatalf("got %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new watcher was not told about a non-empty queue")
	}
	cancel()
	for range ch {
	}
	for range ch2 {
	}
}

func TestClaimOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	const n = 200
	var tasks []store.QueuedTask
	for i := range n {
		tasks = append(tasks, task(fmt.Sprintf("t%03d", i), "", float64(i)))
	}
	enqueueVia(t, a, tasks...)
	claimed := storetest.ClaimConcurrently(t, ctx, []store.Store{a, b, a, b, a, b, a, b}, tasks)
	if len(claimed) != n {
		t.Fatalf("%d tasks claimed, want %d", len(claimed), n)
	}
	loads, err := b.Loads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, c := range loads {
		sum += c
	}
	if sum != n {
		t.Fatalf("loads = %v, sum %d", loads, sum)
	}
	if lens, _ := a.QueueLengths(ctx); len(lens) != 0 {
		t.Fatalf("queues not empty: %v", lens)
	}
}

func TestDueTimersAcrossProcesses(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	past := time.Now().Add(-time.Minute)
	var timers []store.Timer
	for i := range 300 {
		timers = append(timers, store.Timer{JobID: fmt.Sprintf("j%d", i), Kind: store.TimerStep, At: past.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := a.AddTimers(ctx, timers...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fired := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := s.DueTimers(ctx, time.Now(), 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				for _, tm := range due {
					fired[tm.Key()]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(fired) != len(timers) {
		t.Fatalf("%d timers claimed, want %d", len(fired), len(timers))
	}
	for k, n := range fired {
		if n != 1 {
			t.Fatalf("timer %s claimed %d times within its visibility window", k, n)
		}
	}
}

func TestLeaseOfDeadProcessIsReclaimed(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	ctx := testCtx(t)
	dying, err := redisstore.Open(ctx, redisstore.Options{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	survivor := openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	if err := survivor.PushReady(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	if id, _, err := dying.NextReady(ctx, 300*time.Millisecond); err != nil || id != "j" {
		t.Fatalf("take: %q %v", id, err)
	}
	// The job is marked ready during the step, then the process dies.
	if err := survivor.PushReady(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	_ = dying.Close()
	start := time.Now()
	id, _, err := survivor.NextReady(ctx, time.Minute)
	if err != nil || id != "j" {
		t.Fatalf("lease of a dead process not reclaimed: %q %v", id, err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("reclaimed after %v, want about 300ms", waited)
	}
	// Reclaiming cleared the dirty mark: the job is handed out once.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if id, _, err := survivor.NextReady(short, time.Minute); err == nil {
		t.Fatalf("job %s handed out again while leased", id)
	}
}

func TestPrefixesIsolateDeployments(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	ctx := testCtx(t)
	a := openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url)})
	b := openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url)})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := b.WatchQueues(wctx)
	if err != nil {
		t.Fatal(err)
	}
	j := job("shared-id")
	if err := a.CreateJob(ctx, j, store.Effects{
		Ready:   []string{"shared-id"},
		Enqueue: []store.QueuedTask{task("t", "w", 1)},
		Timers:  []store.Timer{{JobID: "shared-id", Kind: store.TimerStep, At: time.Now().Add(-time.Second)}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.AcquireLock(ctx, "sched", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.PutWorker(ctx, &store.Worker{ID: "w"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetJob(ctx, "shared-id"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b sees a's job: %v", err)
	}
	if jobs, _, _ := b.ListJobs(ctx, store.JobFilter{}); len(jobs) != 0 {
		t.Fatalf("b lists a's jobs: %v", jobs)
	}
	if lens, _ := b.QueueLengths(ctx); len(lens) != 0 {
		t.Fatalf("b sees a's queues: %v", lens)
	}
	if due, _ := b.DueTimers(ctx, time.Now(), 10, time.Minute); len(due) != 0 {
		t.Fatalf("b fires a's timers: %v", due)
	}
	if ws, _ := b.ListWorkers(ctx); len(ws) != 0 {
		t.Fatalf("b sees a's workers: %v", ws)
	}
	if _, ok, _ := b.AcquireLock(ctx, "sched", time.Minute); !ok {
		t.Fatal("a's lock blocks b")
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if id, _, err := b.NextReady(short, time.Minute); err == nil {
		t.Fatalf("b took a's ready job %s", id)
	}
	select {
	case name := <-watch:
		t.Fatalf("b's watcher heard of a's queue %s", name)
	case <-time.After(200 * time.Millisecond):
	}
	// The same id is free in b.
	if err := b.CreateJob(ctx, job("shared-id"), store.Effects{}); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalJobIndexIsPurged(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	ctx := testCtx(t)
	s := openStore(t, redisstore.Options{URL: url, Prefix: prefix, Retention: 200 * time.Millisecond})
	const odd = "c/ü\"<&>"
	j := job("done")
	j.Client.Name = odd
	if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateJob(ctx, job("live"), store.Effects{}); err != nil {
		t.Fatal(err)
	}
	j.Status = protocol.StatusFinished
	j.Client.Name = "renamed" // the index entry made at creation is found anyway
	j.CreatedAt = j.CreatedAt.Add(time.Hour)
	if err := s.UpdateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	rdb := rawClient(t, url)
	defer rdb.Close()
	if ttl := rdb.PTTL(ctx, "{"+prefix+"}:job:done").Val(); ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("terminal job TTL = %v", ttl)
	}
	if n := rdb.ZCard(ctx, "{"+prefix+"}:jobs:client:"+odd).Val(); n != 1 {
		t.Fatalf("client index holds %d entries before the purge", n)
	}
	time.Sleep(400 * time.Millisecond)
	jobs, _, err := s.ListJobs(ctx, store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != "live" {
		t.Fatalf("list = %v", jobs)
	}
	for key, want := range map[string]int64{"jobs:all": 1, "jobs:client:c": 1, "jobs:client:" + odd: 0} {
		if n := rdb.ZCard(ctx, "{"+prefix+"}:"+key).Val(); n != want {
			t.Fatalf("%s holds %d entries after the purge, want %d", key, n, want)
		}
	}
	if n := rdb.ZCard(ctx, "{"+prefix+"}:jobs:expiring").Val(); n != 0 {
		t.Fatalf("jobs:expiring holds %d entries", n)
	}
}

func TestCommitRetriesWhenTaskMoves(t *testing.T) {
	t.Parallel()
	// A task claimed between the commit's look-up and its script must
	// still be removed from where it went.
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	for i := range 50 {
		id := fmt.Sprintf("t%d", i)
		enqueueVia(t, a, task(id, "w", 1))
		done := make(chan error, 1)
		go func() {
			_, err := b.ClaimTask(ctx, id, "w2")
			done <- err
		}()
		if err := a.CreateJob(ctx, job("rm-"+id), store.Effects{Remove: []string{id}}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if r, _ := a.RunningTasks(ctx, "w2"); len(r) != 0 {
		t.Fatalf("removed tasks still running: %v", r)
	}
	if loads, _ := a.Loads(ctx); len(loads) != 0 {
		t.Fatalf("loads left: %v", loads)
	}
}

func TestReadyAcrossProcessesHandsOutOnce(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoStores(t)
	ctx := testCtx(t)
	const n = 300
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id, _, err := s.NextReady(cctx, time.Minute)
				if err != nil {
					return
				}
				mu.Lock()
				seen[id]++
				done := len(seen) == n
				mu.Unlock()
				if err := s.DoneReady(ctx, id); err != nil {
					t.Error(err)
				}
				if done {
					cancel()
				}
			}
		}()
	}
	for i := range n {
		s := a
		if i%3 == 0 {
			s = b
		}
		if err := s.PushReady(ctx, fmt.Sprintf("j%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-cctx.Done():
	case <-time.After(10 * time.Second):
		mu.Lock()
		t.Fatalf("only %d of %d jobs handed out", len(seen), n)
	}
	wg.Wait()
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("job %s handed out %d times", id, c)
		}
	}
}

func TestOddIdentifiers(t *testing.T) {
	t.Parallel()
	a, _, _, _ := twoStores(t)
	ctx := testCtx(t)
	ids := []string{"{tag}", "a:b|c", "ünïcødé-😀", "<&>\"'\\", "with space", "x}{y"}
	for _, id := range ids {
		j := job(id)
		j.Client.Name = id
		fx := store.Effects{
			Ready:   []string{id},
			Enqueue: []store.QueuedTask{task("task-"+id, "worker-"+id, 1)},
			Timers:  []store.Timer{{JobID: id, Kind: store.TimerStep, Ref: id, At: time.Now().Add(-time.Second)}},
		}
		if err := a.CreateJob(ctx, j, fx); err != nil {
			t.Fatalf("create %q: %v", id, err)
		}
		got, err := a.GetJob(ctx, id)
		if err != nil || got.ID != id {
			t.Fatalf("get %q: %v %v", id, got, err)
		}
		if list, _, err := a.ListJobs(ctx, store.JobFilter{Client: id}); err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("list client %q: %v %v", id, list, err)
		}
		q, err := a.PeekTasks(ctx, store.WorkerQueue("worker-"+id), 10)
		if err != nil || len(q) != 1 || q[0].Run.ID != "task-"+id {
			t.Fatalf("peek %q: %v %v", id, q, err)
		}
		if _, err := a.ClaimTask(ctx, "task-"+id, "w"); err != nil {
			t.Fatalf("claim %q: %v", id, err)
		}
		if next, _, err := a.NextReady(ctx, time.Minute); err != nil || next != id {
			t.Fatalf("ready %q: %q %v", id, next, err)
		}
		due, err := a.DueTimers(ctx, time.Now(), 10, time.Minute)
		if err != nil || len(due) != 1 || due[0].JobID != id || due[0].Ref != id {
			t.Fatalf("timers %q: %v %v", id, due, err)
		}
	}
	loads, err := a.Loads(ctx)
	if err != nil || len(loads) != 1 || loads["w"] != len(ids) {
		t.Fatalf("loads = %v %v", loads, err)
	}
}

// Every record of a job that ended expires with it, whether the write that
// ended it came from a whole read (which names the part records left) or
// from a read of some tasks (which expires all four part keys).
func TestTerminalJobPartsExpire(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	ctx := testCtx(t)
	s := openStore(t, redisstore.Options{URL: url, Prefix: prefix, Retention: time.Hour})
	rdb := rawClient(t, url)
	defer rdb.Close()
	for _, whole := range []bool{true, false} {
		id := fmt.Sprintf("ends-whole-%v", whole)
		j := job(id)
		j.Tasks = map[string]*store.TaskRun{}
		for _, tid := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} { // more than store.SmallJob
			j.Tasks[tid] = &store.TaskRun{ID: tid, Spec: store.TaskSpec{Type: "x"}, State: store.TaskQueued}
		}
		j.Dispatches = []store.Dispatch{{TaskID: "a"}}
		if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
			t.Fatal(err)
		}
		var err error
		if whole {
			j, err = s.GetJob(ctx, id)
		} else {
			j, err = s.LoadJob(ctx, id, "a")
		}
		if err != nil || j.Loaded.All != whole {
			t.Fatalf("read %s: all=%v %v", id, j.Loaded.All, err)
		}
		delete(j.Tasks, "a")
		j.DoneTasks = map[string]string{"a": "success"}
		j.BranchResults = map[string]store.Result{"a": {TaskID: "a", Status: "success"}}
		j.Status = protocol.StatusFinished
		if err := s.UpdateJob(ctx, j, store.Effects{}); err != nil {
			t.Fatal(err)
		}
		keys, err := rdb.Keys(ctx, "{"+prefix+"}:job:"+id+"*").Result()
		if err != nil || len(keys) != 5 {
			t.Fatalf("keys of %s: %v %v", id, keys, err)
		}
		for _, k := range keys {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("%s does not expire (PTTL %v)", k, ttl)
			}
		}
	}
}
