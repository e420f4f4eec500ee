package engine

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// pickupFaults wraps a store: after a claim it can cancel the poll that
// asked (onClaim), and it can fail the next job writes. A claim made with
// a write (store.Effects.Claims) calls onClaim before the write; with
// refuseClaims such a write is refused as if the task did not head its
// queue, so that polls claim first, then write.
type pickupFaults struct {
	store.Store
	onClaim      atomic.Pointer[func()]
	failWrites   atomic.Int64
	refuseClaims bool
}

func (s *pickupFaults) ClaimTask(ctx context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	return s.claimed(s.Store.ClaimTask(ctx, taskID, workerID))
}

func (s *pickupFaults) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	return s.claimed(s.Store.ClaimNext(ctx, queue, workerID))
}

func (s *pickupFaults) claimed(qt *store.QueuedTask, err error) (*store.QueuedTask, error) {
	if f := s.onClaim.Swap(nil); f != nil && err == nil && qt != nil {
		(*f)()
	}
	return qt, err
}

func (s *pickupFaults) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	if len(fx.Claims) > 0 {
		if s.refuseClaims {
			return fmt.Errorf("refused: %w", store.ErrNotHead)
		}
		if f := s.onClaim.Swap(nil); f != nil {
			(*f)()
		}
	}
	if s.failWrites.Add(-1) >= 0 {
		return fmt.Errorf("injected: %w", store.ErrUnavailable)
	}
	return s.Store.UpdateJob(ctx, j, fx)
}

func oneTask() *blueprint.Blueprint {
	return blueprint.New("one").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work"})
	}, blueprint.On("success", "finished")).End("finished", nil)
}

// A poll that ends right after its claim does not strand the task: the
// pickup is committed all the same, and since the worker never got the
// task it is retried at once (not after the execution timeout), at no cost
// to the worker; its next poll gets it and the job finishes.
func TestClaimSurvivesTheEndOfItsPoll(t *testing.T) {
	t.Parallel()
	bothClaims(t, testClaimSurvivesTheEndOfItsPoll)
}

// bothClaims runs a test of pickups on polls that claim with their write
// and on polls that claim first, then write.
func bothClaims(t *testing.T, test func(t *testing.T, faults *pickupFaults)) {
	for _, first := range []bool{false, true} {
		name := "claim with the write"
		if first {
			name = "claim first"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, &pickupFaults{Store: memory.New(memory.Options{}), refuseClaims: first})
		})
	}
}

func testClaimSurvivesTheEndOfItsPoll(t *testing.T, faults *pickupFaults) {
	en := newEnv(t, Config{Store: faults}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j := en.create("one", nil)
	en.wait(j.ID, "the task queued", func(j *store.Job) bool { return len(j.Tasks) == 1 })
	pollCtx, cancelPoll := context.WithCancel(en.ctx)
	cancelFn := func() { cancelPoll() }
	faults.onClaim.Store(&cancelFn)
	if p, err := en.e.NextTask(pollCtx, "w1", time.Second); p != nil || err != nil {
		t.Fatalf("a poll that ended got %+v %v", p, err)
	}
	retriedAtNoCost(t, en, j)
}

// retriedAtNoCost checks that job j's one task, lost on its way to w1, is
// retried at once: nothing left running on w1, its next poll gets attempt
// 2, the job finishes, and w1's reputation did not pay for it.
func retriedAtNoCost(t *testing.T, en *env, j *store.Job) {
	t.Helper()
	en.wait(j.ID, "the task retried", func(j *store.Job) bool {
		for _, run := range j.Tasks {
			return run.Attempt == 2
		}
		return false
	})
	if running, err := en.store.RunningTasks(en.ctx, "w1"); err != nil || len(running) != 0 {
		t.Fatalf("w1 still holds %v %v", running, err)
	}
	p, err := en.e.NextTask(en.ctx, "w1", 5*time.Second)
	if err != nil || p == nil || p.JobID != j.ID || p.Attempt != 2 {
		t.Fatalf("next poll: %+v %v", p, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
	if reps, _ := en.store.Reputations(en.ctx, "w1"); reps["w1"] < 1 {
		t.Fatalf("w1 paid for a lost task: %v", reps)
	}
}

// A claim whose pickup cannot be committed puts the task back in its
// queue (or, claimed with the write, never left it): the next poll gets
// it and the job finishes.
func TestFailedPickupPutsTheTaskBack(t *testing.T) {
	t.Parallel()
	bothClaims(t, testFailedPickupPutsTheTaskBack)
}

func testFailedPickupPutsTheTaskBack(t *testing.T, faults *pickupFaults) {
	en := newEnv(t, Config{Store: faults}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j := en.create("one", nil)
	en.wait(j.ID, "the task queued", func(j *store.Job) bool { return len(j.Tasks) == 1 })
	// The pickup's write and its retries by mutate fail; the put-back works.
	failOnce := func() { faults.failWrites.Store(1) }
	faults.onClaim.Store(&failOnce)
	if p, err := en.e.NextTask(en.ctx, "w1", time.Second); err == nil || p != nil {
		t.Fatalf("poll with a failing pickup: %+v %v", p, err)
	}
	lengths, err := en.store.QueueLengths(en.ctx)
	if err != nil || lengths[store.WorkerQueue("w1")]+lengths[store.PendingQueue("work")] != 1 {
		t.Fatalf("queues after a failed pickup: %v %v", lengths, err)
	}
	p, err := en.e.NextTask(en.ctx, "w1", time.Second)
	if err != nil || p == nil {
		t.Fatalf("second poll: %+v %v", p, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job: %s", summary(end))
	}
}

// The job's status follows its task: waiting for a worker while queued,
// running once a worker picked it up, waiting again while a retry waits,
// and no progress message of a step once the job ended.
func TestStatusFollowsTheTask(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 20 * time.Millisecond}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j := en.create("one", nil)
	if got := en.waitStatus(j.ID, protocol.StatusWaitingForWorker); !strings.Contains(got.ProgressMessage, "queued for worker w1") {
		t.Fatalf("queued: %q", got.ProgressMessage)
	}
	p, err := en.e.NextTask(en.ctx, "w1", time.Second)
	if err != nil || p == nil {
		t.Fatalf("poll: %+v %v", p, err)
	}
	running, err := en.e.GetJob(en.ctx, j.ID)
	if err != nil || running.Status != protocol.StatusRunning || !strings.Contains(running.ProgressMessage, "running on worker w1") {
		t.Fatalf("picked up: %s %q %v", running.Status, running.ProgressMessage, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "busy"}}); err != nil {
		t.Fatal(err)
	}
	retrying, err := en.e.GetJob(en.ctx, j.ID)
	if err != nil || retrying.Status != protocol.StatusWaitingForWorker || !strings.Contains(retrying.ProgressMessage, "retrying task work") {
		t.Fatalf("retrying: %s %q %v", retrying.Status, retrying.ProgressMessage, err)
	}
	p, err = en.e.NextTask(en.ctx, "w1", 2*time.Second)
	if err != nil || p == nil || p.Attempt != 2 {
		t.Fatalf("second poll: %+v %v", p, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished || end.ProgressMessage != "" {
		t.Fatalf("ended: %s %q", end.Status, end.ProgressMessage)
	}
}

// claimCounts counts the claims that took a task and the writes that
// claim one.
type claimCounts struct {
	store.Store
	claims, claimWrites atomic.Int64
}

func (s *claimCounts) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	qt, err := s.Store.ClaimNext(ctx, queue, workerID)
	if qt != nil {
		s.claims.Add(1)
	}
	return qt, err
}

func (s *claimCounts) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	if len(fx.Claims) > 0 {
		s.claimWrites.Add(1)
	}
	return s.Store.UpdateJob(ctx, j, fx)
}

// A poll picks up the task this process queued for its worker, or in the
// pending queue of one of its skills, with one write that claims it, and
// claims nothing apart; the job runs as usual.
func TestPickupClaimsWithItsWrite(t *testing.T) {
	t.Parallel()
	one, two := map[string]float64{"work": 1}, map[string]float64{"other": 1, "work": 1}
	t.Run("own queue", func(t *testing.T) { testPickupClaimsWithItsWrite(t, one, false) })
	t.Run("pending", func(t *testing.T) { testPickupClaimsWithItsWrite(t, one, true) })
	t.Run("pending, two skills", func(t *testing.T) { testPickupClaimsWithItsWrite(t, two, true) })
}

func testPickupClaimsWithItsWrite(t *testing.T, skills map[string]float64, pending bool) {
	t.Parallel()
	st := &claimCounts{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: st}, oneTask())
	register := func() { en.register(&fakeWorker{id: "w1", skills: skills}) }
	if !pending {
		register()
	}
	j := en.create("one", nil)
	if pending {
		register() // after the task went to the pending queue
	}
	p, err := en.e.NextTask(en.ctx, "w1", time.Second)
	if err != nil || p == nil || p.JobID != j.ID {
		t.Fatalf("poll: %+v %v", p, err)
	}
	if c, w := st.claims.Load(), st.claimWrites.Load(); c != 0 || w != 1 {
		t.Fatalf("%d claims and %d claiming writes, want 0 and 1", c, w)
	}
	got, _ := en.e.GetJob(en.ctx, j.ID)
	if run := got.Tasks[p.TaskID]; run == nil || run.State != store.TaskRunning || run.WorkerID != "w1" || got.Status != protocol.StatusRunning {
		t.Fatalf("after the pickup: %s", summary(got))
	}
	if last := got.Dispatches[len(got.Dispatches)-1]; pending != strings.HasPrefix(last.Reason, "claimed from the pending queue by w1") {
		t.Fatalf("dispatch records %+v", got.Dispatches)
	}
	if running, _ := en.store.RunningTasks(en.ctx, "w1"); len(running) != 1 || running[0].Run.ID != p.TaskID {
		t.Fatalf("w1 runs %+v", running)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}
