// Package storetest is the conformance suite of store.Store: the behaviour
// every backend (memory, Redis) must have. Call Run from a backend's tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Options are the settings the suite needs from a fresh store.
type Options struct {
	Retention time.Duration // for terminal jobs
}

// Factory returns a new, empty store. It should register its own cleanup.
type Factory func(t *testing.T, opts Options) store.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"Jobs/CreateGet", testCreateGet},
		{"Jobs/OptimisticConcurrency", testConcurrency},
		{"Jobs/EffectsAreAtomic", testEffectsAtomic},
		{"Jobs/List", testList},
		{"Jobs/Retention", testRetention},
		{"Jobs/RetentionLifted", testRetentionLifted},
		{"Ready/LeaseAndDirty", testReadyLease},
		{"Ready/Blocking", testReadyBlocking},
		{"Ready/EndedByWrite", testReadyEndedByWrite},
		{"Ready/LeaseExpiry", testReadyExpiry},
		{"Ready/Concurrent", testReadyConcurrent},
		{"Tasks/Order", testTaskOrder},
		{"Tasks/ClaimOnce", testClaimOnce},
		{"Tasks/ClaimNext", testClaimNext},
		{"Tasks/ClaimInWrite", testClaimInWrite},
		{"Jobs/SeveralInWrite", testSeveralInWrite},
		{"Tasks/HandInWrite", testHandInWrite},
		{"Tasks/RemoveAndRunning", testRemoveRunning},
		{"Tasks/Watch", testWatch},
		{"Timers", testTimers},
		{"Workers/Registry", testWorkers},
		{"Workers/Reputation", testReputation},
		{"Workers/Figures", testWorkerFigures},
		{"Counters", testCounters},
		{"Locks", testLocks},
		{"Jobs/Parts", testParts},
		{"Jobs/PartsExpire", testPartsExpire},
		{"Jobs/SmallJobReadWhole", testSmallJobReadWhole},
		{"Jobs/WideWrite", testWideWrite},
		{"Jobs/Once", testOnce},
		{"Jobs/Reward", testReward},
		{"Outbox/Commit", testOutboxCommit},
		{"Outbox/JobOrder", testOutboxJobOrder},
		{"Outbox/Wait", testOutboxWait},
		{"Stats", testStats},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newJob(id string) *store.Job {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &store.Job{
		ID: id, Blueprint: "bp", Status: protocol.StatusPending, CurrentState: "start",
		InitialData:  map[string]any{"n": 1.0, "nested": map[string]any{"list": []any{"a", 2.0}}},
		StateHistory: map[string]any{},
		Client:       store.Client{Name: "c1", Plan: "vip"},
		CreatedAt:    now, UpdatedAt: now,
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCreateGet(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	j := newJob("job-1")
	j.Tasks = map[string]*store.TaskRun{"t1": {ID: "t1", Spec: store.TaskSpec{Type: "x", Params: map[string]any{"p": "v"}}, State: store.TaskQueued}}
	must(t, s.CreateJob(ctx, j, store.Effects{}))
	if j.Version != 1 {
		t.Fatalf("version after create = %d, want 1", j.Version)
	}
	if err := s.CreateJob(ctx, newJob("job-1"), store.Effects{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	got, err := s.GetJob(ctx, "job-1")
	must(t, err)
	if got.InitialData["nested"].(map[string]any)["list"].([]any)[1] != 2.0 || got.Client.Plan != "vip" ||
		got.Tasks["t1"].Spec.Params["p"] != "v" || !got.CreatedAt.Equal(j.CreatedAt) {
		t.Fatalf("round trip lost data: %+v", got)
	}
	// Copies, not shared maps.
	got.InitialData["n"] = 99.0
	j.InitialData["n"] = 98.0
	again, _ := s.GetJob(ctx, "job-1")
	if again.InitialData["n"] != 1.0 {
		t.Fatalf("store shares maps with callers: n=%v", again.InitialData["n"])
	}
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func testConcurrency(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	must(t, s.CreateJob(ctx, newJob("j"), store.Effects{}))
	a, _ := s.GetJob(ctx, "j")
	b, _ := s.GetJob(ctx, "j")
	a.CurrentState = "a"
	must(t, s.UpdateJob(ctx, a, store.Effects{}))
	if a.Version != 2 {
		t.Fatalf("version after update = %d", a.Version)
	}
	b.CurrentState = "b"
	if err := s.UpdateJob(ctx, b, store.Effects{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if err := s.UpdateJob(ctx, newJob("ghost"), store.Effects{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of missing job: %v", err)
	}
	// Many writers racing: every successful update is one version step.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				for {
					j, err := s.GetJob(ctx, "j")
					if err != nil {
						t.Error(err)
						return
					}
					j.TransitionCount++
					err = s.UpdateJob(ctx, j, store.Effects{})
					if err == nil {
						wins.Add(1)
						break
					}
					if !errors.Is(err, store.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	final, _ := s.GetJob(ctx, "j")
	if final.TransitionCount != 80 || wins.Load() != 80 || final.Version != 82 {
		t.Fatalf("lost updates: count=%d wins=%d version=%d", final.TransitionCount, wins.Load(), final.Version)
	}
}

func testEffectsAtomic(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	// Effects stay in the written job's tree (ids of one tree key, see
	// store.TreeKey).
	must(t, s.CreateJob(ctx, newJob("parent"), store.Effects{}))
	must(t, s.CreateJob(ctx, newJob("parent-taken"), store.Effects{}))
	p, _ := s.GetJob(ctx, "parent")
	p.Status = protocol.StatusWaitingForSubJob
	qt := store.QueuedTask{JobID: "parent", Worker: "w1", Run: store.TaskRun{ID: "task-pa", Spec: store.TaskSpec{Type: "x"}}}
	fx := store.Effects{
		Create:  []*store.Job{newJob("parent-child"), newJob("parent-taken")},
		Ready:   []string{"parent-child"},
		Enqueue: []store.QueuedTask{qt},
		Timers:  []store.Timer{{JobID: "parent", Kind: store.TimerDispatch, Ref: "task-pa", At: time.Now()}},
	}
	if err := s.UpdateJob(ctx, p, fx); !errors.Is(err, store.ErrExists) {
		t.Fatalf("update creating an existing job: %v, want ErrExists", err)
	}
	// Nothing of the failed commit may be visible.
	if got, _ := s.GetJob(ctx, "parent"); got.Status != protocol.StatusPending || got.Version != 1 {
		t.Fatalf("failed commit changed the job: %+v", got)
	}
	if _, err := s.GetJob(ctx, "parent-child"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed commit created the child: %v", err)
	}
	if q, _ := s.PeekTasks(ctx, store.WorkerQueue("w1"), 10); len(q) != 0 {
		t.Fatalf("failed commit enqueued %v", q)
	}
	if due, _ := s.DueTimers(ctx, time.Now().Add(time.Hour), 10, time.Minute); len(due) != 0 {
		t.Fatalf("failed commit added timers %v", due)
	}
	// The same commit without the clash applies fully.
	fx.Create = fx.Create[:1]
	must(t, s.UpdateJob(ctx, p, fx))
	if _, err := s.GetJob(ctx, "parent-child"); err != nil {
		t.Fatalf("child not created: %v", err)
	}
	if q, _ := s.PeekTasks(ctx, store.WorkerQueue("w1"), 10); len(q) != 1 || q[0].Run.ID != "task-pa" {
		t.Fatalf("task not enqueued: %v", q)
	}
	id, version, err := s.NextReady(ctx, time.Minute)
	if err != nil || id != "parent-child" {
		t.Fatalf("ready = %q, %v", id, err)
	}
	// A job is taken with the version it is stored at.
	if child, err := s.GetJob(ctx, id); err != nil || version != child.Version || version == 0 {
		t.Fatalf("job %s taken at version %d, stored at %+v (%v)", id, version, child, err)
	}
	if due, _ := s.DueTimers(ctx, time.Now().Add(time.Hour), 10, time.Minute); len(due) != 1 {
		t.Fatalf("timers = %v", due)
	}
}

func testList(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	base := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 7 {
		j := newJob(fmt.Sprintf("job-%d", i))
		j.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if i%2 == 1 {
			j.Client.Name = "c2"
			j.Status = protocol.StatusFinished
		}
		if i == 6 {
			j.Blueprint = "other"
		}
		must(t, s.CreateJob(ctx, j, store.Effects{}))
	}
	var ids []string
	cursor := ""
	for {
		page, next, err := s.ListJobs(ctx, store.JobFilter{Client: "c1", Limit: 2, Cursor: cursor})
		must(t, err)
		for _, j := range page {
			ids = append(ids, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(ids) != "[job-6 job-4 job-2 job-0]" {
		t.Fatalf("c1 jobs newest first = %v", ids)
	}
	page, _, err := s.ListJobs(ctx, store.JobFilter{Status: "finished"})
	must(t, err)
	if len(page) != 3 {
		t.Fatalf("finished jobs = %d", len(page))
	}
	page, _, _ = s.ListJobs(ctx, store.JobFilter{Blueprint: "other"})
	if len(page) != 1 || page[0].ID != "job-6" {
		t.Fatalf("blueprint filter = %v", page)
	}
	if _, _, err := s.ListJobs(ctx, store.JobFilter{Cursor: "garbage"}); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}

func testRetention(t *testing.T, f Factory) {
	s, ctx := f(t, Options{Retention: 300 * time.Millisecond}), ctxFor(t)
	must(t, s.CreateJob(ctx, newJob("live"), store.Effects{}))
	must(t, s.CreateJob(ctx, newJob("done"), store.Effects{}))
	j, _ := s.GetJob(ctx, "done")
	j.Status = protocol.StatusFinished
	must(t, s.UpdateJob(ctx, j, store.Effects{}))
	time.Sleep(600 * time.Millisecond)
	if _, err := s.GetJob(ctx, "done"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("terminal job outlived its retention: %v", err)
	}
	if _, err := s.GetJob(ctx, "live"); err != nil {
		t.Fatalf("live job expired: %v", err)
	}
}

// testRetentionLifted: a terminal job written live again (a retry) loses
// its retention, with its parts, and stays listed.
func testRetentionLifted(t *testing.T, f Factory) {
	s, ctx := f(t, Options{Retention: 300 * time.Millisecond}), ctxFor(t)
	j := newJob("again")
	j.Tasks = map[string]*store.TaskRun{"a": {ID: "a", Attempt: 1, State: store.TaskQueued}}
	must(t, s.CreateJob(ctx, j, store.Effects{}))
	j.Status = protocol.StatusFailed
	delete(j.Tasks, "a")
	j.DoneTasks = map[string]string{"a": "failure"}
	must(t, s.UpdateJob(ctx, j, store.Effects{}))
	time.Sleep(100 * time.Millisecond)
	j.Status = protocol.StatusRunning
	must(t, s.UpdateJob(ctx, j, store.Effects{}))
	time.Sleep(600 * time.Millisecond)
	got, err := s.GetJob(ctx, "again")
	if err != nil {
		t.Fatalf("a job live again expired with its old retention: %v", err)
	}
	if got.DoneTasks["a"] != "failure" {
		t.Fatalf("its parts expired: done tasks %v", got.DoneTasks)
	}
	page, _, err := s.ListJobs(ctx, store.JobFilter{})
	must(t, err)
	if !slices.ContainsFunc(page, func(j *store.Job) bool { return j.ID == "again" }) {
		t.Fatal("a job live again left the job list when its old retention ended")
	}
}

func testReadyLease(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	// FIFO holds among the jobs of one tree (see store.ReadyQueue).
	must(t, s.PushReady(ctx, "j-a", "j-b", "j-a"))
	first, version, err := s.NextReady(ctx, time.Minute)
	must(t, err)
	if version != 0 {
		t.Fatalf("job %s, which does not exist, taken at version %d", first, version)
	}
	second, _, err := s.NextReady(ctx, time.Minute)
	must(t, err)
	if first != "j-a" || second != "j-b" {
		t.Fatalf("order = %s %s, want FIFO without duplicates", first, second)
	}
	// "j-a" is leased: marking it ready again must not hand it out now.
	must(t, s.PushReady(ctx, "j-a"))
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if id, _, err := s.NextReady(short, time.Minute); err == nil {
		t.Fatalf("leased job %s handed out twice", id)
	}
	must(t, s.ExtendReady(ctx, "j-a", time.Minute))
	must(t, s.DoneReady(ctx, "j-a"))
	id, _, err := s.NextReady(ctx, time.Minute)
	if err != nil || id != "j-a" {
		t.Fatalf("job marked ready during its lease: got %q, %v", id, err)
	}
	must(t, s.DoneReady(ctx, "j-a"))
	must(t, s.DoneReady(ctx, "j-b"))
	short2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if id, _, err := s.NextReady(short2, time.Minute); err == nil {
		t.Fatalf("finished job %s came back", id)
	}
	if err := s.ExtendReady(ctx, "zzz", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("extend of an unknown lease: %v", err)
	}
}

// testReadyEndedByWrite: Effects.DoneReady ends the lease with the write,
// after the write's own ready marks.
func testReadyEndedByWrite(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	j := newJob("j")
	must(t, s.CreateJob(ctx, j, store.Effects{Ready: []string{"j"}}))
	id, _, err := s.NextReady(ctx, time.Minute)
	if err != nil || id != "j" {
		t.Fatalf("take: %q, %v", id, err)
	}
	// The step moves the job on and wants another step: marked ready while
	// leased, it must come back once the same write ends the lease.
	j.CurrentState = "next"
	must(t, s.UpdateJob(ctx, j, store.Effects{Ready: []string{"j"}, DoneReady: true}))
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if id, _, err := s.NextReady(short, time.Minute); err != nil || id != "j" {
		t.Fatalf("job marked ready by the write that ended its lease: %q, %v", id, err)
	}
	// A write that ends the lease without a ready mark leaves it idle.
	j.CurrentState = "waiting"
	must(t, s.UpdateJob(ctx, j, store.Effects{DoneReady: true}))
	if err := s.ExtendReady(ctx, "j", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lease still held after the write ended it: %v", err)
	}
	shorter, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if id, _, err := s.NextReady(shorter, time.Minute); err == nil {
		t.Fatalf("job %s came back without a ready mark", id)
	}
	// A failed write ends nothing.
	must(t, s.PushReady(ctx, "j"))
	if id, _, err := s.NextReady(ctx, time.Minute); err != nil || id != "j" {
		t.Fatalf("take again: %q, %v", id, err)
	}
	stale := j.Clone()
	stale.Version--
	if err := s.UpdateJob(ctx, stale, store.Effects{DoneReady: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	must(t, s.ExtendReady(ctx, "j", time.Minute))
}

func testReadyBlocking(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	got := make(chan string, 1)
	go func() {
		id, _, err := s.NextReady(ctx, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- id
	}()
	time.Sleep(100 * time.Millisecond)
	must(t, s.PushReady(ctx, "late"))
	select {
	case id := <-got:
		if id != "late" {
			t.Fatalf("got %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NextReady did not wake on PushReady")
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, _, err := s.NextReady(cctx, time.Minute); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled NextReady returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NextReady ignored cancellation")
	}
	// A waiter that gave up must not swallow the next job.
	must(t, s.PushReady(ctx, "next"))
	id, _, err := s.NextReady(ctx, time.Minute)
	if err != nil || id != "next" {
		t.Fatalf("after a cancelled waiter: %q %v", id, err)
	}
}

func testReadyExpiry(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	must(t, s.PushReady(ctx, "crashy"))
	id, _, err := s.NextReady(ctx, 300*time.Millisecond)
	if err != nil || id != "crashy" {
		t.Fatal(id, err)
	}
	// The holder "dies": no extend, no done. The job must come back.
	start := time.Now()
	id, _, err = s.NextReady(ctx, time.Minute)
	if err != nil || id != "crashy" {
		t.Fatalf("expired lease not reclaimed: %q %v", id, err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("lease reclaimed before it expired")
	}
}

func testReadyConcurrent(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	const n = 200
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var taken atomic.Int64
	for range 8 {
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
				mu.Unlock()
				_ = s.DoneReady(ctx, id)
				if taken.Add(1) == n {
					cancel()
				}
			}
		}()
	}
	for i := range n {
		must(t, s.PushReady(ctx, fmt.Sprintf("j%d", i)))
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct jobs handed out, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("job %s handed out %d times", id, c)
		}
	}
}

func queued(job, id, worker, typ string, prio float64, at time.Time) store.QueuedTask {
	return store.QueuedTask{
		JobID: job, Worker: worker,
		Run:   store.TaskRun{ID: id, Spec: store.TaskSpec{Type: typ, Priority: prio}, State: store.TaskQueued},
		Score: store.Score(prio, at, time.Minute),
	}
}

var enqueueSeq atomic.Int64

// enqueue queues tasks through commits, as the engine does: one per job
// tree of the task ids (store.TreeKey, two characters here), by a job of
// that tree, since a write's tasks belong to the written job's tree.
func enqueue(t *testing.T, s store.Store, tasks ...store.QueuedTask) {
	t.Helper()
	ctx := ctxFor(t)
	var trees []string
	byTree := map[string][]store.QueuedTask{}
	for _, q := range tasks {
		k := store.TreeKey(q.Run.ID)
		if len(k) != 2 {
			t.Fatalf("task id %q: the suite's task ids have a tree key of two characters", q.Run.ID)
		}
		if byTree[k] == nil {
			trees = append(trees, k)
		}
		byTree[k] = append(byTree[k], q)
	}
	for _, k := range trees {
		j := newJob(fmt.Sprintf("%sq-%d", k, enqueueSeq.Add(1)))
		must(t, s.CreateJob(ctx, j, store.Effects{Enqueue: byTree[k]}))
	}
}

func testTaskOrder(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	enqueue(t, s,
		queued("j", "low-old", "w", "x", 0, now),
		queued("j", "low-new", "w", "x", 0, now.Add(time.Millisecond)),
		queued("j", "high", "w", "x", 5, now.Add(2*time.Millisecond)),
		queued("j", "ancient", "w", "x", 0, now.Add(-10*time.Minute)), // aged past priority 5
		queued("j", "pend", "", "x", 0, now),
	)
	got, err := s.PeekTasks(ctx, store.WorkerQueue("w"), 10)
	must(t, err)
	var ids []string
	for _, q := range got {
		ids = append(ids, q.Run.ID)
	}
	if fmt.Sprint(ids) != "[ancient high low-old low-new]" {
		t.Fatalf("queue order = %v", ids)
	}
	if p, _ := s.PeekTasks(ctx, store.PendingQueue("x"), 10); len(p) != 1 || p[0].Run.ID != "pend" {
		t.Fatalf("pending queue = %v", p)
	}
	lens, err := s.QueueLengths(ctx)
	must(t, err)
	if lens[store.WorkerQueue("w")] != 4 || lens[store.PendingQueue("x")] != 1 {
		t.Fatalf("lengths = %v", lens)
	}
	loads, err := s.Loads(ctx)
	must(t, err)
	if len(loads) != 1 || loads["w"] != 4 {
		t.Fatalf("loads = %v (pending tasks belong to no worker)", loads)
	}
	if p, _ := s.PeekTasks(ctx, store.WorkerQueue("w"), 2); len(p) != 2 {
		t.Fatalf("limit ignored: %d", len(p))
	}
}

func testClaimOnce(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	var tasks []store.QueuedTask
	for i := range 50 {
		tasks = append(tasks, queued("j", fmt.Sprintf("t%02d", i), "owner", "x", 0, now.Add(time.Duration(i)*time.Microsecond)))
	}
	enqueue(t, s, tasks...)
	claimedBy := ClaimConcurrently(t, ctx, []store.Store{s, s, s, s, s, s}, tasks)
	if len(claimedBy) != 50 {
		t.Fatalf("%d tasks claimed, want 50", len(claimedBy))
	}
	if q, _ := s.PeekTasks(ctx, store.WorkerQueue("owner"), 100); len(q) != 0 {
		t.Fatalf("claimed tasks still queued: %d", len(q))
	}
	total := 0
	for w := range 6 {
		r, err := s.RunningTasks(ctx, fmt.Sprintf("w%d", w))
		must(t, err)
		total += len(r)
	}
	if total != 50 {
		t.Fatalf("running sets hold %d tasks", total)
	}
	loads, err := s.Loads(ctx)
	must(t, err)
	sum := 0
	for w, n := range loads {
		if w == "owner" {
			t.Fatalf("claimed tasks still count for their first worker: %v", loads)
		}
		sum += n
	}
	if sum != 50 {
		t.Fatalf("loads = %v", loads)
	}
}

// testClaimInWrite: a write with Effects.Claims claims the task with the
// write when the task is near enough the head of its queue, and otherwise
// writes nothing and claims nothing.
func testClaimInWrite(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	j := newJob("cw-job")
	must(t, s.CreateJob(ctx, j, store.Effects{Enqueue: []store.QueuedTask{
		queued(j.ID, "cw1", "owner", "x", 0, now), queued(j.ID, "cw2", "owner", "x", 0, now.Add(time.Microsecond)),
		queued(j.ID, "cw3", "owner", "x", 0, now.Add(2*time.Microsecond)),
	}}))
	q := store.WorkerQueue("owner")
	if err := s.CreateJob(ctx, newJob("cw-other"), store.Effects{Claims: []store.Claim{{Queue: q, TaskID: "cw1", Worker: "owner"}}}); err == nil {
		t.Fatal("a create with a claim was accepted")
	}
	notHead := func(taskID string) {
		t.Helper()
		stale := j.Clone()
		stale.CurrentState = "changed"
		err := s.UpdateJob(ctx, stale, store.Effects{Claims: []store.Claim{{Queue: q, TaskID: taskID, Worker: "owner"}},
			Timers: []store.Timer{{JobID: j.ID, Kind: store.TimerStep, At: now.Add(time.Hour)}}})
		if !errors.Is(err, store.ErrNotHead) {
			t.Fatalf("claim of %s, which does not head the queue: %v, want ErrNotHead", taskID, err)
		}
		got, err := s.GetJob(ctx, j.ID)
		must(t, err)
		if got.Version != j.Version || got.CurrentState == "changed" {
			t.Fatalf("a refused claim wrote the job: version %d, state %q", got.Version, got.CurrentState)
		}
		if _, ok, _ := s.NextTimer(ctx); ok {
			t.Fatal("a refused claim added a timer")
		}
	}
	notHead("cw2")     // cw1 comes first
	notHead("cw-none") // in no queue
	// A stale version claims nothing either.
	stale := j.Clone()
	stale.Version--
	if err := s.UpdateJob(ctx, stale, store.Effects{Claims: []store.Claim{{Queue: q, TaskID: "cw1", Worker: "owner"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a claim on a stale version: %v, want ErrConflict", err)
	}
	if run, _ := s.RunningTasks(ctx, "owner"); len(run) != 0 {
		t.Fatalf("refused claims left running tasks %+v", run)
	}

	must(t, s.UpdateJob(ctx, j, store.Effects{Claims: []store.Claim{{Queue: q, TaskID: "cw1", Worker: "owner"}}}))
	run, err := s.RunningTasks(ctx, "owner")
	must(t, err)
	if len(run) != 1 || run[0].Run.ID != "cw1" || run[0].Worker != "owner" {
		t.Fatalf("running after the claim: %+v", run)
	}
	// The second of the queue, within two of the head.
	must(t, s.UpdateJob(ctx, j, store.Effects{Claims: []store.Claim{{Queue: q, TaskID: "cw3", Worker: "owner", Within: 2}}}))
	if run, _ := s.RunningTasks(ctx, "owner"); len(run) != 2 {
		t.Fatalf("running after the claim within two: %+v", run)
	}
	next, err := s.ClaimNext(ctx, q, "owner")
	must(t, err)
	if next == nil || next.Run.ID != "cw2" {
		t.Fatalf("next claim = %+v, want cw2", next)
	}
	if next, err := s.ClaimNext(ctx, q, "owner"); next != nil || err != nil {
		t.Fatalf("queue after both claims: %+v %v", next, err)
	}
}

// testHandInWrite: Effects.Hand puts a task straight into its worker's
// running set and load, with a create or an update, moving it out of a
// queue it was in; a result's Remove takes it out again; a task to hand
// without a worker is refused and nothing is written.
func testHandInWrite(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	j := newJob("hw-job")
	handed := queued(j.ID, "hw1", "w1", "x", 0, now)
	handed.Run.State = store.TaskRunning
	must(t, s.CreateJob(ctx, j, store.Effects{Hand: []store.QueuedTask{handed},
		Enqueue: []store.QueuedTask{queued(j.ID, "hw2", "", "x", 0, now)}}))
	run, err := s.RunningTasks(ctx, "w1")
	must(t, err)
	if len(run) != 1 || run[0].Run.ID != "hw1" || run[0].Worker != "w1" || run[0].Run.State != store.TaskRunning {
		t.Fatalf("running after a create that hands hw1: %+v", run)
	}
	load := func(worker string) int {
		t.Helper()
		fig, err := s.WorkerFigures(ctx, worker)
		must(t, err)
		return fig.Loads[worker]
	}
	if n := load("w1"); n != 1 {
		t.Fatalf("w1's load after the hand-off: %d, want 1", n)
	}
	// A queued task handed moves: out of its queue, into the running set.
	moved := queued(j.ID, "hw2", "w2", "x", 0, now)
	must(t, s.UpdateJob(ctx, j, store.Effects{Hand: []store.QueuedTask{moved}}))
	if next, err := s.ClaimNext(ctx, store.PendingQueue("x"), "w3"); next != nil || err != nil {
		t.Fatalf("the pending queue after hw2 was handed: %+v %v", next, err)
	}
	if run, _ := s.RunningTasks(ctx, "w2"); len(run) != 1 || run[0].Run.ID != "hw2" || load("w2") != 1 {
		t.Fatalf("w2 runs %+v with load %d after hw2 was handed", run, load("w2"))
	}
	// Without a worker: refused, nothing written.
	before := j.Version
	bad := queued(j.ID, "hw3", "", "x", 0, now)
	if err := s.UpdateJob(ctx, j.Clone(), store.Effects{Hand: []store.QueuedTask{bad}}); err == nil {
		t.Fatal("a task handed to no worker was accepted")
	}
	if got, err := s.GetJob(ctx, j.ID); err != nil || got.Version != before {
		t.Fatalf("a refused hand-off wrote the job: %v %+v", err, got)
	}
	// The result takes it out.
	must(t, s.UpdateJob(ctx, j, store.Effects{Remove: []string{"hw1", "hw2"}}))
	for _, w := range []string{"w1", "w2"} {
		if run, _ := s.RunningTasks(ctx, w); len(run) != 0 {
			t.Fatalf("%s runs %+v after the results", w, run)
		}
		// A store may place on figures a few milliseconds old (the
		// Redis store's loadsAge): wait for the next read.
		deadline := time.Now().Add(5 * time.Second)
		for load(w) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s's load after the results: %d, want 0", w, load(w))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// testClaimNext: polls racing for one queue take its tasks in order, each
// once, and the loads follow the tasks.
func testClaimNext(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	if got, err := s.ClaimNext(ctx, store.WorkerQueue("owner"), "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue: %v %v", got, err)
	}
	var tasks []store.QueuedTask
	for i := range 40 {
		tasks = append(tasks, queued("j", fmt.Sprintf("t%02d", i), "owner", "x", 0, now.Add(time.Duration(i)*time.Microsecond)))
	}
	tasks = append(tasks, queued("j", "pp", "", "x", 0, now))
	enqueue(t, s, tasks...)
	first, err := s.ClaimNext(ctx, store.WorkerQueue("owner"), "owner")
	must(t, err)
	if first == nil || first.Run.ID != "t00" || first.Worker != "owner" || first.JobID != "j" {
		t.Fatalf("first claim = %+v, want t00 for owner", first)
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", i)
			last := ""
			for {
				got, err := s.ClaimNext(ctx, store.WorkerQueue("owner"), worker)
				if err != nil {
					t.Error(err)
					return
				}
				if got == nil {
					return
				}
				if got.Run.ID <= last {
					t.Errorf("%s claimed %s after %s: out of order", worker, got.Run.ID, last)
				}
				last = got.Run.ID
				mu.Lock()
				if prev, dup := claimed[got.Run.ID]; dup {
					t.Errorf("task %s claimed by %s and %s", got.Run.ID, prev, worker)
				}
				claimed[got.Run.ID] = worker
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 39 {
		t.Fatalf("%d tasks claimed, want 39", len(claimed))
	}
	lens, err := s.QueueLengths(ctx)
	must(t, err)
	if _, ok := lens[store.WorkerQueue("owner")]; ok || lens[store.PendingQueue("x")] != 1 {
		t.Fatalf("queue lengths after draining one queue: %v", lens)
	}
	loads, err := s.Loads(ctx)
	must(t, err)
	sum := 0
	for _, n := range loads {
		sum += n
	}
	if loads["owner"] != 1 || sum != 40 {
		t.Fatalf("loads = %v, want owner 1 (its own claim) and 40 in all", loads)
	}
	p, err := s.ClaimNext(ctx, store.PendingQueue("x"), "w9")
	must(t, err)
	if p == nil || p.Run.ID != "pp" {
		t.Fatalf("claim from the pending queue = %+v", p)
	}
	if r, _ := s.RunningTasks(ctx, "w9"); len(r) != 1 || r[0].Run.ID != "pp" {
		t.Fatalf("running tasks of w9 = %v", r)
	}
}

func testRemoveRunning(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	enqueue(t, s, queued("j", "r-a", "w", "x", 0, now), queued("j", "r-b", "", "x", 0, now), queued("j", "r-c", "w", "x", 0, now))
	if _, err := s.ClaimTask(ctx, "r-c", "w2"); err != nil {
		t.Fatal(err)
	}
	// The remover is of the tasks' tree ("r-").
	must(t, s.CreateJob(ctx, newJob("r-remover"), store.Effects{Remove: []string{"r-a", "r-b", "r-c"}}))
	if q, _ := s.PeekTasks(ctx, store.WorkerQueue("w"), 10); len(q) != 0 {
		t.Fatalf("removed tasks still queued: %v", q)
	}
	if q, _ := s.PeekTasks(ctx, store.PendingQueue("x"), 10); len(q) != 0 {
		t.Fatalf("removed pending task still queued: %v", q)
	}
	if r, _ := s.RunningTasks(ctx, "w2"); len(r) != 0 {
		t.Fatalf("removed running task still listed: %v", r)
	}
	if _, err := s.ClaimTask(ctx, "r-a", "w"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of removed task: %v", err)
	}
	enqueue(t, s, queued("j", "dd", "w", "x", 0, now))
	if _, err := s.ClaimTask(ctx, "dd", "w"); err != nil {
		t.Fatal(err)
	}
	must(t, s.ReleaseTask(ctx, "other", "dd")) // not its holder: no effect
	if r, _ := s.RunningTasks(ctx, "w"); len(r) != 1 {
		t.Fatalf("release by a non-holder removed the task: %v", r)
	}
	must(t, s.ReleaseTask(ctx, "w", "dd"))
	if r, _ := s.RunningTasks(ctx, "w"); len(r) != 0 {
		t.Fatalf("released task still running: %v", r)
	}
	// Re-enqueueing a task id moves it instead of duplicating it.
	enqueue(t, s, queued("j", "ee", "w", "x", 0, now))
	enqueue(t, s, queued("j", "ee", "", "x", 0, now))
	if q, _ := s.PeekTasks(ctx, store.WorkerQueue("w"), 10); len(q) != 0 {
		t.Fatalf("re-enqueued task left behind: %v", q)
	}
	if q, _ := s.PeekTasks(ctx, store.PendingQueue("x"), 10); len(q) != 1 {
		t.Fatalf("re-enqueued task missing: %v", q)
	}
}

func testWatch(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	wctx, cancel := context.WithCancel(ctx)
	ch, err := s.WatchQueues(wctx)
	must(t, err)
	time.Sleep(100 * time.Millisecond) // let a subscription settle
	enqueue(t, s, queued("j", "wa", "w9", "x", 0, time.Now()), queued("j", "wb", "", "y", 0, time.Now()))
	want := map[string]bool{store.WorkerQueue("w9"): true, store.PendingQueue("y"): true}
	deadline := time.After(5 * time.Second)
	for len(want) > 0 {
		select {
		case name := <-ch:
			delete(want, name)
		case <-deadline:
			t.Fatalf("notifications missing for %v", want)
		}
	}
	cancel()
	for range ch { // the channel closes when the context ends
	}
}

func testTimers(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	a := store.Timer{JobID: "j1", Kind: store.TimerDispatch, Ref: "t1", Seq: 1, At: now.Add(-2 * time.Second)}
	b := store.Timer{JobID: "j2", Kind: store.TimerRetry, Ref: "t2", Seq: 2, At: now.Add(-time.Second)}
	c := store.Timer{JobID: "j3", Kind: store.TimerStep, At: now.Add(time.Hour)}
	must(t, s.AddTimers(ctx, c, b, a))
	next, ok, err := s.NextTimer(ctx)
	must(t, err)
	if !ok || next.Sub(a.At).Abs() > time.Millisecond {
		t.Fatalf("next timer %v, want %v", next, a.At)
	}
	due, err := s.DueTimers(ctx, now, 10, 300*time.Millisecond)
	must(t, err)
	if len(due) != 2 || due[0].Key() != a.Key() || due[1].Key() != b.Key() {
		t.Fatalf("due = %+v", due)
	}
	if due[1].Seq != 2 || due[1].Kind != store.TimerRetry || due[1].Ref != "t2" {
		t.Fatalf("timer fields lost: %+v", due[1])
	}
	// Claimed timers are invisible until the visibility window ends...
	if again, _ := s.DueTimers(ctx, time.Now(), 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed timers handed out again at once: %+v", again)
	}
	// ...then fire again if nobody deleted them.
	must(t, s.DeleteTimers(ctx, a.Key()))
	time.Sleep(400 * time.Millisecond)
	again, _ := s.DueTimers(ctx, time.Now(), 10, time.Minute)
	if len(again) != 1 || again[0].Key() != b.Key() {
		t.Fatalf("undeleted claimed timer did not come back: %+v", again)
	}
	// Adding a timer with the same key moves it.
	c.At = now.Add(-time.Minute)
	must(t, s.AddTimers(ctx, c))
	due, _ = s.DueTimers(ctx, time.Now(), 1, time.Minute)
	if len(due) != 1 || due[0].Key() != c.Key() {
		t.Fatalf("moved timer: %+v", due)
	}
	must(t, s.DeleteTimers(ctx, b.Key(), c.Key()))
	if _, ok, _ := s.NextTimer(ctx); ok {
		t.Fatal("timers left after deleting all")
	}
	k, ok := store.ParseTimerKey(b.Key())
	if !ok || k.JobID != "j2" || k.Kind != store.TimerRetry || k.Ref != "t2" || k.Seq != 2 {
		t.Fatalf("ParseTimerKey = %+v", k)
	}
	// A ref with the key's separator in it still comes back whole.
	odd := store.Timer{JobID: "j4", Kind: store.TimerStep, Ref: "a|b", Seq: 3, At: now.Add(-time.Second)}
	must(t, s.AddTimers(ctx, odd))
	due, err = s.DueTimers(ctx, time.Now(), 10, time.Minute)
	must(t, err)
	if len(due) != 1 || due[0].JobID != odd.JobID || due[0].Kind != odd.Kind || due[0].Ref != odd.Ref || due[0].Seq != odd.Seq {
		t.Fatalf("timer with a | in its ref: %+v", due)
	}
	must(t, s.DeleteTimers(ctx, odd.Key()))
}

func testWorkers(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	w := &store.Worker{
		ID: "gpu-1", Type: "gpu", Status: protocol.WorkerIdle,
		Skills:       []protocol.SkillInfo{{Name: "transcode"}},
		Resources:    &protocol.Resources{Devices: []protocol.HardwareDevice{{Type: "gpu", Model: "T4", Properties: map[string]any{"memory_gb": 16.0}}}},
		Capabilities: &protocol.Capabilities{CostPerSkill: map[string]float64{"transcode": 0.5}},
		LastSeen:     time.Now().UTC().Truncate(time.Millisecond),
	}
	must(t, s.PutWorker(ctx, w, 400*time.Millisecond))
	must(t, s.PutWorker(ctx, &store.Worker{ID: "cpu-1", Status: protocol.WorkerIdle}, time.Minute))
	got, err := s.GetWorker(ctx, "gpu-1")
	must(t, err)
	if c, _ := got.Cost("transcode"); c != 0.5 || got.Resources.Devices[0].Properties["memory_gb"] != 16.0 || !got.HasSkill("transcode") {
		t.Fatalf("worker round trip: %+v", got)
	}
	list, err := s.ListWorkers(ctx)
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("list = %d workers", len(list))
	}
	ok, err := s.TouchWorker(ctx, "gpu-1", 400*time.Millisecond)
	must(t, err)
	if !ok {
		t.Fatal("touch of a live worker failed")
	}
	if ok, _ := s.TouchWorker(ctx, "ghost", time.Second); ok {
		t.Fatal("touch of an unknown worker succeeded")
	}
	time.Sleep(700 * time.Millisecond)
	if _, err := s.GetWorker(ctx, "gpu-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired worker still readable: %v", err)
	}
	if list, _ := s.ListWorkers(ctx); len(list) != 1 || list[0].ID != "cpu-1" {
		t.Fatalf("list after expiry = %v", list)
	}
	exp, err := s.ExpiredWorkers(ctx)
	must(t, err)
	if len(exp) != 1 || exp[0] != "gpu-1" {
		t.Fatalf("expired = %v", exp)
	}
	if exp, _ := s.ExpiredWorkers(ctx); len(exp) != 0 {
		t.Fatalf("expired workers reported twice: %v", exp)
	}
	must(t, s.DeleteWorker(ctx, "cpu-1"))
	if _, err := s.GetWorker(ctx, "cpu-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted worker readable: %v", err)
	}
	if exp, _ := s.ExpiredWorkers(ctx); len(exp) != 0 {
		t.Fatalf("a deleted worker was reported expired: %v", exp)
	}
}

// testWorkerFigures: one read returns the reputations of the workers
// named (those set) and every worker's load.
func testWorkerFigures(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	must(t, s.SetReputation(ctx, "b", 0.5))
	must(t, s.SetReputation(ctx, "other", 0.2))
	now := time.Now()
	enqueue(t, s, queued("j", "t1", "b", "x", 0, now), queued("j", "t2", "b", "x", 0, now), queued("j", "t3", "a", "x", 0, now))
	got, err := s.WorkerFigures(ctx, "a", "b")
	must(t, err)
	if len(got.Reputations) != 1 || got.Reputations["b"] != 0.5 {
		t.Fatalf("reputations = %v, want b's alone", got.Reputations)
	}
	if len(got.Loads) != 2 || got.Loads["a"] != 1 || got.Loads["b"] != 2 {
		t.Fatalf("loads = %v", got.Loads)
	}
	if none, err := s.WorkerFigures(ctx); err != nil || len(none.Reputations) != 0 || len(none.Loads) != 2 {
		t.Fatalf("no ids: %+v %v", none, err)
	}
}

func testReputation(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	r, err := s.AdjustReputation(ctx, "w", -0.25, 1, 0, 1)
	must(t, err)
	if r != 0.75 {
		t.Fatalf("reputation = %v", r)
	}
	r, _ = s.AdjustReputation(ctx, "w", 5, 1, 0, 1)
	if r != 1 {
		t.Fatalf("reputation above ceiling: %v", r)
	}
	r, _ = s.AdjustReputation(ctx, "w", -5, 1, 0.1, 1)
	if r != 0.1 {
		t.Fatalf("reputation below floor: %v", r)
	}
	must(t, s.SetReputation(ctx, "v", 0.5))
	reps, err := s.Reputations(ctx, "w", "v", "unknown")
	must(t, err)
	if len(reps) != 2 || reps["w"] != 0.1 || reps["v"] != 0.5 {
		t.Fatalf("reputations = %v", reps)
	}
	// Reputation outlives the worker record.
	must(t, s.PutWorker(ctx, &store.Worker{ID: "w"}, time.Minute))
	must(t, s.DeleteWorker(ctx, "w"))
	if reps, _ := s.Reputations(ctx, "w"); reps["w"] != 0.1 {
		t.Fatalf("reputation lost with the record: %v", reps)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := s.AdjustReputation(ctx, "race", -0.001, 1, 0, 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if reps, _ := s.Reputations(ctx, "race"); reps["race"] < 0.8999 || reps["race"] > 0.9001 {
		t.Fatalf("concurrent adjustments lost: %v", reps["race"])
	}
}

func testCounters(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	exp := time.Now().Add(400 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		n, err := s.Incr(ctx, "rate", 1, exp)
		must(t, err)
		if n != int64(i) {
			t.Fatalf("incr = %d, want %d", n, i)
		}
	}
	// A later expiry on later hits must not slide the window.
	if n, _ := s.Incr(ctx, "rate", 1, time.Now().Add(time.Hour)); n != 4 {
		t.Fatalf("incr = %d", n)
	}
	time.Sleep(600 * time.Millisecond)
	if n, _ := s.Incr(ctx, "rate", 1, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("fixed window did not reset: %d", n)
	}
	for i := range 3 {
		n, ok, err := s.IncrIfBelow(ctx, "quota", 2, time.Now().Add(time.Hour))
		must(t, err)
		if wantOK := i < 2; ok != wantOK || n != int64(min(i+1, 2)) {
			t.Fatalf("IncrIfBelow #%d = %d %v", i, n, ok)
		}
	}
	first, err := s.SetOnce(ctx, "seen", 300*time.Millisecond)
	must(t, err)
	second, _ := s.SetOnce(ctx, "seen", 300*time.Millisecond)
	if !first || second {
		t.Fatalf("SetOnce = %v %v", first, second)
	}
	time.Sleep(500 * time.Millisecond)
	if again, _ := s.SetOnce(ctx, "seen", time.Minute); !again {
		t.Fatal("SetOnce key did not expire")
	}
	must(t, s.PutValue(ctx, "k", "v", 0))
	must(t, s.PutValue(ctx, "short", "v", 300*time.Millisecond))
	if v, err := s.GetValue(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("value = %q %v", v, err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := s.GetValue(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired value: %v", err)
	}
	must(t, s.DeleteValue(ctx, "k"))
	if _, err := s.GetValue(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted value: %v", err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, _, err := s.IncrIfBelow(ctx, "race", 55, time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := s.Incr(ctx, "race", 0, time.Now().Add(time.Hour)); n != 55 {
		t.Fatalf("IncrIfBelow overshot under contention: %d", n)
	}
}

func testLocks(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	l1, ok, err := s.AcquireLock(ctx, "sched", 300*time.Millisecond)
	must(t, err)
	if !ok {
		t.Fatal("free lock not acquired")
	}
	if _, ok, _ := s.AcquireLock(ctx, "sched", time.Second); ok {
		t.Fatal("held lock acquired twice")
	}
	if ok, _ := s.RefreshLock(ctx, l1, 300*time.Millisecond); !ok {
		t.Fatal("holder could not refresh")
	}
	time.Sleep(500 * time.Millisecond)
	l2, ok, _ := s.AcquireLock(ctx, "sched", time.Minute)
	if !ok {
		t.Fatal("expired lock not re-acquired")
	}
	if l2.Token <= l1.Token {
		t.Fatalf("fencing token did not grow: %d then %d", l1.Token, l2.Token)
	}
	if ok, _ := s.RefreshLock(ctx, l1, time.Minute); ok {
		t.Fatal("a lapsed holder refreshed the lock")
	}
	must(t, s.ReleaseLock(ctx, l1)) // no effect: not the holder
	if _, ok, _ := s.AcquireLock(ctx, "sched", time.Minute); ok {
		t.Fatal("a lapsed holder released the current holder's lock")
	}
	must(t, s.ReleaseLock(ctx, l2))
	if _, ok, _ := s.AcquireLock(ctx, "sched", time.Minute); !ok {
		t.Fatal("released lock not free")
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := s.AcquireLock(ctx, "race", time.Minute); err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d goroutines acquired one lock", wins.Load())
	}
}

// ClaimConcurrently has one goroutine per store, worker "w<i>" on
// stores[i], try to claim every task, and fails the test when a task is
// claimed twice or a claim records another worker. It returns the worker
// of each claimed task.
func ClaimConcurrently(t *testing.T, ctx context.Context, stores []store.Store, tasks []store.QueuedTask) map[string]string {
	t.Helper()
	var mu sync.Mutex
	claimedBy := map[string]string{}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", i)
			for _, q := range tasks {
				got, err := s.ClaimTask(ctx, q.Run.ID, worker)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := claimedBy[got.Run.ID]; dup {
					t.Errorf("task %s claimed by %s and %s", got.Run.ID, prev, worker)
				}
				claimedBy[got.Run.ID] = worker
				mu.Unlock()
				if got.Worker != worker {
					t.Errorf("claimed task records worker %q", got.Worker)
				}
			}
		}()
	}
	wg.Wait()
	return claimedBy
}
