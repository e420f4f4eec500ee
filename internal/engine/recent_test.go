package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// countedReads counts the job reads that reach a store, and the task
// records the writes put.
type countedReads struct {
	store.Store
	reads, taskPuts, updates atomic.Int64
}

func (s *countedReads) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	s.taskPuts.Add(int64(len(j.Changes().PutTasks)))
	s.updates.Add(1)
	return s.Store.UpdateJob(ctx, j, fx)
}

func (s *countedReads) GetJob(ctx context.Context, id string) (*store.Job, error) {
	s.reads.Add(1)
	return s.Store.GetJob(ctx, id)
}

func (s *countedReads) LoadJob(ctx context.Context, id string, taskIDs ...string) (*store.Job, error) {
	s.reads.Add(1)
	return s.Store.LoadJob(ctx, id, taskIDs...)
}

// A one-task job written by one process is picked up and finished from the
// copies the engine kept of its last writes: no job read reaches the store.
func TestRecentJobsSaveReads(t *testing.T) {
	t.Parallel()
	st := &countedReads{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: st}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "one"})
	if err != nil {
		t.Fatal(err)
	}
	en.succeed("w1", 0)
	if n := st.reads.Load(); n != 0 {
		t.Fatalf("%d job reads reached the store for a pickup and a result", n)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// taskThenStep dispatches a task, then runs a handler state on its result.
func taskThenStep() *blueprint.Blueprint {
	return blueprint.New("step").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work"})
	}, blueprint.On("success", "after")).
		State("after", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished")).
		End("finished", nil)
}

// approvalThenStep waits for a decision, then runs a step: an approval
// marks the job ready for an executor.
func approvalThenStep() *blueprint.Blueprint {
	return blueprint.New("approve").Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("go on?")
	}, blueprint.On("yes", "after")).
		State("after", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished")).
		End("finished", nil)
}

// The executor's step after a write of this process (an approval's)
// starts from the copy kept of that write, when the store holds the job
// at the copy's version; at another version it reads the job.
func TestRecentJobsStandForTheStepsRead(t *testing.T) {
	t.Parallel()
	t.Run("the copy at the version taken", func(t *testing.T) {
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st}, approvalThenStep())
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "approve"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := en.e.Approve(en.ctx, j.ID, "yes"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(en.eventsOf(EventJobEnded)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the job did not end")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := st.reads.Load(); n != 0 {
			t.Fatalf("%d job reads reached the store for an approval and a step", n)
		}
	})
	t.Run("a read when another process wrote since", func(t *testing.T) {
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st, Executors: -1}, approvalThenStep()) // steps run below
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "approve"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := en.e.Approve(en.ctx, j.ID, "yes"); err != nil {
			t.Fatal(err)
		}
		// Another process writes the job after this one's approval.
		stored, err := st.Store.GetJob(en.ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored.StateHistory = map[string]any{"elsewhere": true}
		if err := st.Store.UpdateJob(en.ctx, stored, store.Effects{}); err != nil {
			t.Fatal(err)
		}
		id, version, err := st.NextReady(en.ctx, time.Minute)
		if err != nil || id != j.ID || version != stored.Version {
			t.Fatalf("take: %q at version %d (%v), stored at %d", id, version, err, stored.Version)
		}
		before := st.reads.Load()
		if _, err := en.e.step(en.ctx, id, version); err != nil {
			t.Fatal(err)
		}
		if n := st.reads.Load() - before; n != 1 {
			t.Fatalf("the step read the job %d times, want once: its copy was behind", n)
		}
		end := en.waitEnd(j.ID)
		if end.Status != protocol.StatusFinished || end.StateHistory["elsewhere"] != true {
			t.Fatalf("job %s, state history %v: the step did not start from the stored job", summary(end), end.StateHistory)
		}
	})
}

// The step after a result is committed with the result, as a job's first
// step is with its create: with no executor running, a job whose task
// leads to a state with a handler ends, its result and that step in one
// write. A handler that fails there leaves its step to an executor, which
// retries it.
func TestStepAfterResultCommittedWithIt(t *testing.T) {
	t.Parallel()
	t.Run("committed with the result", func(t *testing.T) {
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st, Executors: -1}, taskThenStep()) // no executor
		en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "step"})
		if err != nil {
			t.Fatal(err)
		}
		en.succeed("w1", 0)
		end := en.waitEnd(j.ID)
		if end.Status != protocol.StatusFinished || len(en.eventsOf(EventStateEntered)) != 2 {
			t.Fatalf("job %s, states entered %v", summary(end), en.eventsOf(EventStateEntered))
		}
		if n := st.updates.Load(); n != 2 {
			t.Fatalf("%d job writes after the create, want 2: the pickup, and the result with its step", n)
		}
	})
	t.Run("an aggregator after a fan-out wider than a view", func(t *testing.T) {
		bp := blueprint.New("fan").Start("start", func(c *blueprint.Context) error {
			return c.DispatchParallel(slices.Repeat([]blueprint.Task{{Type: "work"}}, 5))
		}, blueprint.FanIn("join")).
			Aggregator("join", func(c *blueprint.Context) error {
				if len(c.Branches()) != 5 {
					return fmt.Errorf("the aggregator sees %d branches", len(c.Branches()))
				}
				return c.GoTo("finished")
			}, blueprint.To("finished")).
			End("finished", nil)
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st, Executors: -1}, bp) // no executor
		en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "fan"})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			en.succeed("w1", 0)
		}
		// The results held views of one task; the last ran the aggregator
		// on the whole copy kept of the job, not on a read.
		if n := st.reads.Load(); n != 0 {
			t.Fatalf("%d job reads reached the store", n)
		}
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
			t.Fatalf("job %s", summary(end))
		}
	})
	t.Run("a failing handler left to an executor", func(t *testing.T) {
		var failed atomic.Bool
		bp := blueprint.New("flaky").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "work"})
		}, blueprint.On("success", "after")).
			State("after", func(c *blueprint.Context) error {
				if !failed.Swap(true) {
					return errors.New("not yet")
				}
				return c.GoTo("finished")
			}, blueprint.To("finished")).
			End("finished", nil)
		en := newEnv(t, Config{}, bp)
		en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "flaky"})
		if err != nil {
			t.Fatal(err)
		}
		en.succeed("w1", 0)
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished || !failed.Load() {
			t.Fatalf("job %s after a failing step", summary(end))
		}
	})
}

// A copy made stale by another process changes no outcome. Process A
// creates the job and keeps a copy (task queued, attempt 1); process B
// picks the task up and retries it after the worker's transient failure
// (attempt 2). A's copy would make A's pickup of attempt 2 look like a
// task that moved on, which would drop it; A decides again on the stored
// job instead, and the job finishes through A.
func TestRecentJobsStaleCopy(t *testing.T) {
	t.Parallel()
	shared := memory.New(memory.Options{})
	a := newEnv(t, Config{Store: shared}, oneTask())
	b := newEnv(t, Config{Store: shared}, oneTask())
	a.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := a.e.CreateJob(a.ctx, NewJob{Blueprint: "one"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.e.NextTask(b.ctx, "w1", time.Second)
	if err != nil || p == nil {
		t.Fatalf("poll through B: %+v %v", p, err)
	}
	res := protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "try again"}}
	if _, err := b.e.SubmitResult(b.ctx, "w1", res); err != nil {
		t.Fatal(err)
	}
	b.wait(j.ID, "attempt 2 queued", func(j *store.Job) bool {
		for _, run := range j.Tasks {
			return run.Attempt == 2 && run.State == store.TaskQueued
		}
		return false
	})
	a.succeed("w1", 2)
	if end := a.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// A fan-out wider than store.SmallJob, written by one process, has its
// branches picked up and finished on views of the kept copy, and its
// fan-in, which needs every branch, run on the copy itself.
func TestRecentJobsViewsOfAFanOut(t *testing.T) {
	t.Parallel()
	const width = 12
	bp := fanOut("wide", width)
	st := &countedReads{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: st}, bp)
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "wide"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range width {
		p := en.succeed("w1", 0)
		if i == 0 {
			// A repeated result is ignored: a guess that writes nothing,
			// decided again on a read, keeps the copy.
			resp, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskSuccess})
			if err != nil || resp.Status != protocol.ResultIgnored {
				t.Fatalf("repeated result: %+v %v", resp, err)
			}
		}
	}
	end := en.waitEnd(j.ID)
	if end.Status != protocol.StatusFinished || len(end.Dispatches) != width {
		t.Fatalf("job %s, %d dispatches", summary(end), len(end.Dispatches))
	}
	// The repeated result's read, and waitEnd's.
	if n := st.reads.Load(); n > 4 {
		t.Fatalf("%d job reads reached the store for %d branches", n, width)
	}
	// A pickup writes its task, a result none: not every outstanding one.
	if n := st.taskPuts.Load(); n > 2*width {
		t.Fatalf("the writes put %d task records for %d branches", n, width)
	}
}

// A step's effects all reach the write that absorbs it: every list of
// store.Effects, so that one added later cannot be dropped unnoticed.
func TestAbsorbTakesEveryEffect(t *testing.T) {
	t.Parallel()
	step := &txn{events: []Event{{Type: EventStateEntered}}, handoffs: []handoff{{}}}
	fx := reflect.ValueOf(&step.fx).Elem()
	for i := range fx.NumField() {
		if f := fx.Field(i); f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	into := &txn{}
	into.absorb(step)
	got := reflect.ValueOf(into.fx)
	for i := range got.NumField() {
		if f := got.Field(i); f.Kind() == reflect.Slice && f.Len() != 1 {
			t.Errorf("absorb drops Effects.%s", got.Type().Field(i).Name)
		}
	}
	if len(into.events) != 1 || len(into.handoffs) != 1 {
		t.Errorf("absorb drops events (%d) or hand-offs (%d)", len(into.events), len(into.handoffs))
	}
}

// A run of quick states (decisions that dispatch nothing and wait for
// nothing) is taken with the write that leads to it, the create's, a
// result's, an executor's step's or a parent's resumption's: with no
// executor running, such a job ends with its create, or with its task's
// pickup and result. One that keeps moving is left to an executor after
// maxInlineSteps steps.
func TestStepsAfterRunWithTheWrite(t *testing.T) {
	t.Parallel()
	goTo := func(state string) blueprint.Handler {
		return func(c *blueprint.Context) error { return c.GoTo(state) }
	}
	t.Run("after the create", func(t *testing.T) {
		bp := blueprint.New("quick").Start("start", goTo("a"), blueprint.To("a")).
			State("a", goTo("b"), blueprint.To("b")).
			State("b", goTo("finished"), blueprint.To("finished")).
			End("finished", nil)
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st, Executors: -1}, bp) // no executor
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "quick"})
		if err != nil {
			t.Fatal(err)
		}
		end := en.waitEnd(j.ID)
		if end.Status != protocol.StatusFinished || end.TransitionCount != 3 || st.updates.Load() != 0 {
			t.Fatalf("job %s after %d transitions and %d writes after its create", summary(end), end.TransitionCount, st.updates.Load())
		}
	})
	t.Run("after a result", func(t *testing.T) {
		bp := blueprint.New("quick").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "work"})
		}, blueprint.On("success", "a")).
			State("a", goTo("b"), blueprint.To("b")).
			State("b", goTo("finished"), blueprint.To("finished")).
			End("finished", nil)
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st, Executors: -1}, bp)
		en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "quick"})
		if err != nil {
			t.Fatal(err)
		}
		en.succeed("w1", 0)
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished || st.updates.Load() != 2 {
			t.Fatalf("job %s with %d writes after its create, want 2: the pickup, and the result with its steps", summary(end), st.updates.Load())
		}
	})
	t.Run("after an executor's step", func(t *testing.T) {
		bp := blueprint.New("approve").Start("start", func(c *blueprint.Context) error {
			return c.AwaitApproval("go on?")
		}, blueprint.On("yes", "a")).
			State("a", goTo("b"), blueprint.To("b")).
			State("b", goTo("finished"), blueprint.To("finished")).
			End("finished", nil)
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st}, bp)
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "approve"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := en.e.Approve(en.ctx, j.ID, "yes"); err != nil {
			t.Fatal(err)
		}
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished || st.updates.Load() != 2 {
			t.Fatalf("job %s with %d writes after its create, want 2: the approval, and the executor's step with the next", summary(end), st.updates.Load())
		}
	})
	t.Run("after a child's end", func(t *testing.T) {
		child := blueprint.New("child").Start("start", goTo("finished"), blueprint.To("finished")).End("finished", nil)
		parent := blueprint.New("parent").Start("start", func(c *blueprint.Context) error {
			return c.RunBlueprint("child", nil)
		}, blueprint.Child("child"), blueprint.On("success", "a"), blueprint.On("failure", "failed")).
			State("a", goTo("b"), blueprint.To("b")).
			State("b", goTo("finished"), blueprint.To("finished")).
			End("finished", nil).End("failed", nil)
		st := &countedReads{Store: memory.New(memory.Options{})}
		en := newEnv(t, Config{Store: st}, parent, child)
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "parent"})
		if err != nil {
			t.Fatal(err)
		}
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished || st.updates.Load() != 2 {
			t.Fatalf("parent %s with %d job writes after its create, want 2: the child's step, and the parent's resumption with its steps", summary(end), st.updates.Load())
		}
	})
	t.Run("a job that keeps moving", func(t *testing.T) {
		bp := blueprint.New("loop").Start("start", goTo("a"), blueprint.To("a")).
			State("a", goTo("b"), blueprint.To("b")).
			State("b", goTo("a"), blueprint.To("a", "finished")).
			End("finished", nil)
		en := newEnv(t, Config{Executors: -1}, bp)
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "loop"})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := en.store.GetJob(en.ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status.Terminal() || stored.TransitionCount != 1+maxInlineSteps {
			t.Fatalf("job %s after %d transitions, want %d and left to an executor", summary(stored), stored.TransitionCount, 1+maxInlineSteps)
		}
	})
}
