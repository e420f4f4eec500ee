package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// failCreates fails the next creates it is told to.
type failCreates struct {
	*claimCounts
	fail         atomic.Int64
	beforeCreate atomic.Pointer[context.CancelFunc] // called once, before the next create
}

func (s *failCreates) CreateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	if f := s.beforeCreate.Swap(nil); f != nil {
		(*f)()
	}
	if s.fail.Add(-1) >= 0 {
		return fmt.Errorf("injected: %w", store.ErrUnavailable)
	}
	return s.claimCounts.CreateJob(ctx, j, fx)
}

// parkedPoll waits until a poll of worker waits in the engine, ready to be
// handed a task.
func parkedPoll(t *testing.T, e *Engine, worker string) {
	t.Helper()
	queue := store.WorkerQueue(worker)
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.hub.mu.Lock()
		parked := false
		for s := range e.hub.subs[queue] {
			parked = parked || s.state == pollParked
		}
		e.hub.mu.Unlock()
		if parked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no poll of %s waits", worker)
		}
		time.Sleep(time.Millisecond)
	}
}

type polled struct {
	p   *protocol.TaskPayload
	err error
}

// pollAsync polls for worker in the background, until ctx ends.
func pollAsync(ctx context.Context, en *env, worker string) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		p, err := en.e.NextTask(ctx, worker, 10*time.Second)
		out <- polled{p, err}
	}()
	return out
}

// A task dispatched to a worker whose poll waits in this process goes to
// that poll with the dispatch's own write: no queue, no claim, no pickup
// write (the job is at version 1, its create), the task running on the
// worker and in its running set. A dispatch whose write fails hands the
// poll nothing: it goes on waiting, and takes the next job's task.
func TestDispatchHandsTheTaskToAWaitingPoll(t *testing.T) {
	t.Parallel()
	st := &failCreates{claimCounts: &claimCounts{Store: memory.New(memory.Options{})}}
	en := newEnv(t, Config{Store: st}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})

	got := pollAsync(en.ctx, en, "w1")
	parkedPoll(t, en.e, "w1")
	st.fail.Store(1)
	if _, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "one", Client: blueprint.Client{Name: "tester"}}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("create with a failing write: %v", err)
	}
	stillWaiting(t, got, "a dispatch that was not written")

	parkedPoll(t, en.e, "w1")
	j := en.create("one", nil)
	r := <-got
	if r.err != nil || r.p == nil || r.p.JobID != j.ID || r.p.Type != "work" {
		t.Fatalf("poll: %+v %v", r.p, r.err)
	}
	if c, w := st.claims.Load(), st.claimWrites.Load(); c != 0 || w != 0 {
		t.Fatalf("%d claims and %d claiming writes, want none", c, w)
	}
	stored, err := en.store.GetJob(en.ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	run := stored.Tasks[r.p.TaskID]
	if stored.Version != 1 || run == nil || run.State != store.TaskRunning || run.WorkerID != "w1" || stored.Status != protocol.StatusRunning {
		t.Fatalf("after the hand-off (want version 1, the task running on w1): version %d, %s", stored.Version, summary(stored))
	}
	if len(stored.Dispatches) != 1 || stored.Dispatches[0].WorkerID != "w1" {
		t.Fatalf("dispatches %+v", stored.Dispatches)
	}
	if running, _ := en.store.RunningTasks(en.ctx, "w1"); len(running) != 1 || running[0].Run.ID != r.p.TaskID {
		t.Fatalf("w1 runs %+v", running)
	}
	if queued, _ := en.store.PeekTasks(en.ctx, store.WorkerQueue("w1"), 10); len(queued) != 0 {
		t.Fatalf("w1's queue holds %+v", queued)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: r.p.JobID, TaskID: r.p.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// A poll that ends while a dispatch hands it its task does not strand the
// task: the task is retried at once, at no cost to the worker, and the
// worker's next poll gets it.
func TestHandOffToAPollThatEnded(t *testing.T) {
	t.Parallel()
	st := &failCreates{claimCounts: &claimCounts{Store: memory.New(memory.Options{})}}
	en := newEnv(t, Config{Store: st}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	pollCtx, cancelPoll := context.WithCancel(en.ctx)
	got := pollAsync(pollCtx, en, "w1")
	parkedPoll(t, en.e, "w1")
	st.beforeCreate.Store(&cancelPoll) // the poll ends while its task is written
	j := en.create("one", nil)
	if r := <-got; r.p != nil || r.err != nil {
		t.Fatalf("a poll that ended got %+v %v", r.p, r.err)
	}
	retriedAtNoCost(t, en, j)
}

// A result that asks for the worker's next task gets one this process
// queued even while another poll of the worker's waits here: that poll
// looked before the task came and is not woken for it (it waits on the
// queues of the skills the worker had then), so the result's answer is
// what takes it, and the waiting poll goes on waiting.
func TestResultTakesATaskWhileAPollWaits(t *testing.T) {
	t.Parallel()
	other := blueprint.New("other").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "other"})
	}, blueprint.On("success", "finished")).End("finished", nil)
	en := newEnv(t, Config{PollTimeout: time.Minute}, oneTask(), other)
	one := map[string]any{"max_concurrent_tasks": 1.0}
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, extra: one})
	first := en.create("one", nil)
	p, err := en.e.NextTask(en.ctx, "w1", time.Second)
	if err != nil || p == nil || p.JobID != first.ID {
		t.Fatalf("poll: %+v %v", p, err)
	}
	pollCtx, cancelPoll := context.WithCancel(en.ctx)
	defer cancelPoll()
	waiting := pollAsync(pollCtx, en, "w1")
	parkedPoll(t, en.e, "w1")

	// The worker now has a second skill, and no room: the task of that
	// skill waits in its pending queue.
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1, "other": 1}, extra: one})
	second := en.create("other", nil)
	if queued, err := en.store.PeekTasks(en.ctx, store.PendingQueue("other"), 10); err != nil || len(queued) != 1 || queued[0].JobID != second.ID {
		t.Fatalf("pending queue of other: %+v %v", queued, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: first.ID, TaskID: p.TaskID, Status: protocol.TaskSuccess}); err != nil {
		t.Fatal(err)
	}
	next, err := en.e.TakeTask(en.ctx, "w1")
	if err != nil || next == nil || next.JobID != second.ID || next.Type != "other" {
		t.Fatalf("the next task with the result: %+v %v, want the task of job %s", next, err, second.ID)
	}
	cancelPoll()
	if r := <-waiting; r.p != nil {
		t.Fatalf("the waiting poll got %+v too", r.p)
	}
}
