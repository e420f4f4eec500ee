package engine

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// TestRetryFailedTask: a job whose task failed and whose failure route
// ended it in a failure end state runs again from the state of that task,
// with a new task at attempt 1, and finishes; job_retried says who asked
// and from where.
func TestRetryFailedTask(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	w := en.start(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, handle: func(p *protocol.TaskPayload) protocol.TaskResult {
		if p.Attempt != 1 {
			return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "attempt is not 1"}}
		}
		if !healthy.Load() {
			return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "bad codec"}}
		}
		return protocol.TaskResult{Status: protocol.TaskSuccess, Data: map[string]any{"out": "x"}}
	}})
	j := en.waitEnd(en.create("d", map[string]any{"n": 1}).ID)
	if j.Status != protocol.StatusFailed || j.CurrentState != "failed_state" || j.FailedState != "start" {
		t.Fatalf("before the retry: %s failed_state=%q", summary(j), j.FailedState)
	}
	healthy.Store(true)
	r, err := en.e.RetryJob(en.ctx, j.ID, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != protocol.StatusRunning || r.CurrentState != "start" || r.ErrorMessage != "" || r.FinishedAt != nil || r.Result != nil || r.FailedState != "" ||
		r.TransitionCount != 0 {
		t.Fatalf("after the retry: %s finished_at=%v result=%v", summary(r), r.FinishedAt, r.Result)
	}
	done := en.waitEnd(j.ID)
	if done.Status != protocol.StatusFinished || done.CurrentState != "finished" || done.StateHistory["out"] != "x" {
		t.Fatalf("after the retry the job ended %s", summary(done))
	}
	if n := w.runs.Load(); n != 2 {
		t.Fatalf("the worker ran %d tasks, want 2", n)
	}
	w.mu.Lock()
	first, second := w.seen[0], w.seen[1]
	w.mu.Unlock()
	if first == second {
		t.Fatal("the retry reused the failed task's id")
	}
	evs := en.eventsOf(EventJobRetried)
	if len(evs) != 1 {
		t.Fatalf("%d job_retried events", len(evs))
	}
	ev := evs[0]
	if ev.JobID != j.ID || ev.State != "start" || ev.PrevState != "failed_state" || ev.Detail["by"] != "operator" ||
		ev.Detail["from_status"] != "failed" || !strings.Contains(ev.Detail["error"].(string), "bad codec") {
		t.Fatalf("job_retried event %+v", ev)
	}
	if ev.Job == nil || ev.Job.Status != protocol.StatusRunning {
		t.Fatalf("job_retried carries no running snapshot: %+v", ev.Job)
	}
}

// TestRetryQuarantinedHandler: a job quarantined by a failing handler runs
// the handler again with a fresh count of attempts: it is quarantined again
// only after MaxRetries further failures.
func TestRetryQuarantinedHandler(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var fixed atomic.Bool
	bp := blueprint.New("h").Start("start", func(c *blueprint.Context) error {
		calls.Add(1)
		if !fixed.Load() {
			return errors.New("the model server is down")
		}
		return c.GoTo("finished")
	}, blueprint.To("finished")).End("finished", nil)
	en := newEnv(t, Config{MaxRetries: 2}, bp)
	j := en.waitEnd(en.create("h", nil).ID)
	if j.Status != protocol.StatusQuarantined {
		t.Fatalf("before the retry: %s", summary(j))
	}
	before := calls.Load()
	if _, err := en.e.RetryJob(en.ctx, j.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	j = en.wait(j.ID, "quarantined again", func(j *store.Job) bool { return j.Status == protocol.StatusQuarantined })
	if n := calls.Load() - before; n != 3 {
		t.Fatalf("the retried handler ran %d times, want 3 (a fresh count)", n)
	}
	if !strings.Contains(j.ErrorMessage, "failed after 3 attempts") {
		t.Fatalf("second quarantine: %s", summary(j))
	}
	fixed.Store(true)
	if _, err := en.e.RetryJob(en.ctx, j.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	if j = en.waitEnd(j.ID); j.Status != protocol.StatusFinished || j.ErrorMessage != "" {
		t.Fatalf("after the second retry: %s", summary(j))
	}
}

// TestRetryRefused: only failed and quarantined jobs are retried, and only
// when their blueprint still has a state to run again; nothing changes.
func TestRetryRefused(t *testing.T) {
	t.Parallel()
	child := blueprint.New("child").Start("start", func(c *blueprint.Context) error {
		return c.GoTo("broken")
	}, blueprint.To("broken")).End("broken", nil)
	parent := blueprint.New("parent").Start("start", func(c *blueprint.Context) error {
		return c.RunBlueprint("child", nil)
	}, blueprint.Child("child"), blueprint.On("success", "finished"), blueprint.On("failure", "broken")).
		End("finished", nil).End("broken", nil)
	ends := blueprint.New("ends").Start("start", func(c *blueprint.Context) error {
		if c.Input("wait") == true {
			return c.AwaitApproval("ok?")
		}
		return c.GoTo("broken")
	}, blueprint.To("finished", "broken"), blueprint.On("yes", "finished")).End("finished", nil).End("broken", nil)
	en := newEnv(t, Config{}, child, parent, ends)

	refused := func(id, why string) {
		t.Helper()
		before, err := en.e.GetJob(en.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		_, err = en.e.RetryJob(en.ctx, id, "operator")
		if !errors.Is(err, ErrNotRetryable) || !strings.Contains(err.Error(), why) {
			t.Fatalf("retry of %s: %v, want ErrNotRetryable saying %q", id, err, why)
		}
		after, _ := en.e.GetJob(en.ctx, id)
		if after.Version != before.Version || after.Status != before.Status {
			t.Fatalf("a refused retry changed the job: %s -> %s", summary(before), summary(after))
		}
	}
	waiting := en.waitStatus(en.create("ends", map[string]any{"wait": true}).ID, protocol.StatusWaitingForHuman)
	refused(waiting.ID, "is waiting_for_human")
	if _, err := en.e.Approve(en.ctx, waiting.ID, "yes"); err != nil {
		t.Fatal(err)
	}
	refused(en.waitStatus(waiting.ID, protocol.StatusFinished).ID, "is finished")
	byDesign := en.waitEnd(en.create("ends", nil).ID)
	refused(byDesign.ID, `end state "broken", reached without a failed task`)

	p := en.waitEnd(en.create("parent", nil).ID)
	if p.Status != protocol.StatusFailed || p.CurrentState != "broken" || p.FailedState != "start" {
		t.Fatalf("parent: %s failed_state=%q", summary(p), p.FailedState)
	}
	children := func() []string {
		var out []string
		for _, ev := range en.eventsOf(EventJobCreated) {
			if ev.Detail["parent_job_id"] == p.ID {
				out = append(out, ev.JobID)
			}
		}
		return out
	}
	c := en.waitEnd(children()[0])
	refused(c.ID, "child job of "+p.ID)

	if _, err := en.e.RetryJob(en.ctx, "no-such-job", "operator"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("unknown job: %v", err)
	}

	// A blueprint changed since the job failed: its state went away.
	gone := en.waitEnd(en.create("ends", nil).ID)
	gone.FailedState = "renamed"
	if err := en.store.UpdateJob(en.ctx, gone, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	refused(gone.ID, `no longer has state "renamed"`)
	gone.Blueprint = "retired"
	if err := en.store.UpdateJob(en.ctx, gone, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	refused(gone.ID, `blueprint "retired" is no longer registered`)

	// The parent, retried, runs a new child.
	if _, err := en.e.RetryJob(en.ctx, p.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	again := en.waitEnd(p.ID)
	if kids := children(); len(kids) != 2 || again.Status != protocol.StatusFailed {
		t.Fatalf("the retried parent: %s, children %v", summary(again), kids)
	}
}

// TestRetryLiftsRetention: a retried job is live again, so the store keeps
// it past the retention its failure started.
func TestRetryLiftsRetention(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("slow").Start("start", func(c *blueprint.Context) error {
		if c.Input("fail") == true {
			return blueprint.ErrMisuse
		}
		return c.AwaitApproval("ok?")
	}, blueprint.On("yes", "finished")).End("finished", nil)
	st := memory.New(memory.Options{Retention: 300 * time.Millisecond})
	en := newEnv(t, Config{Store: st}, bp)
	j := en.waitEnd(en.create("slow", map[string]any{"fail": true}).ID)
	if j.Status != protocol.StatusFailed {
		t.Fatalf("job %s", summary(j))
	}
	// The input is fixed by the time it is retried: it waits for a human.
	j.InitialData["fail"] = false
	if err := st.UpdateJob(en.ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	if _, err := en.e.RetryJob(en.ctx, j.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	en.waitStatus(j.ID, protocol.StatusWaitingForHuman)
	time.Sleep(600 * time.Millisecond)
	if _, err := en.e.GetJob(en.ctx, j.ID); err != nil {
		t.Fatalf("the retried job expired with its old retention: %v", err)
	}
}

// TestRetryAfterCompensation: a task's failure route led on (compensate,
// then mid), and a later handler chose the failure end. The failed task is
// behind the job: a retry would re-run work already compensated, so it is
// refused; and a retried job gets a fresh transition budget.
func TestRetryAfterCompensation(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("comp").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work"})
	}, blueprint.On("success", "mid"), blueprint.On("failure", "compensate")).
		State("compensate", func(c *blueprint.Context) error { return c.GoTo("mid") }, blueprint.To("mid")).
		State("mid", func(c *blueprint.Context) error { return c.GoTo("rejected") }, blueprint.To("rejected")).
		End("rejected", nil)
	en := newEnv(t, Config{}, bp)
	en.start(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, handle: func(p *protocol.TaskPayload) protocol.TaskResult {
		return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "bad codec"}}
	}})
	j := en.waitEnd(en.create("comp", nil).ID)
	if j.Status != protocol.StatusFailed || j.CurrentState != "rejected" || j.FailedState != "" {
		t.Fatalf("ended %s failed_state=%q, want failed in rejected with no failed state", summary(j), j.FailedState)
	}
	if _, err := en.e.RetryJob(en.ctx, j.ID, "operator"); !errors.Is(err, ErrNotRetryable) {
		t.Fatalf("retry after the compensation: %v, want ErrNotRetryable", err)
	}
}
