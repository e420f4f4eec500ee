package engine

import (
	"testing"
	"time"
)

// stillWaiting fails the test if the poll answered within a while.
func stillWaiting(t *testing.T, got <-chan polled, why string) {
	t.Helper()
	select {
	case r := <-got:
		t.Fatalf("%s: the poll answered %+v (%v)", why, r.p, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

// taskOf waits for a poll's answer and checks it is the task of job id.
func taskOf(t *testing.T, got <-chan polled, id string) {
	t.Helper()
	select {
	case r := <-got:
		if r.err != nil || r.p == nil || r.p.JobID != id {
			t.Fatalf("poll: %+v %v, want the task of %s", r.p, r.err, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the poll did not get the task of %s", id)
	}
}

// While a result of the worker's will ask for its next task, a poll of
// the worker's leaves it the task queued for the worker: the result takes
// it, and the poll goes on waiting, to be handed the next job's task.
func TestPollLeavesTheTaskToTheResultAskingForIt(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{PollTimeout: time.Minute}, oneTask())
	en.e.pollHold = time.Minute
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	first := en.create("one", nil) // no poll waits: queued for w1

	release := en.e.AskingFor("w1")
	got := pollAsync(en.ctx, en, "w1")
	parkedPoll(t, en.e, "w1")
	stillWaiting(t, got, "a result asks for the queued task")

	p, err := en.e.TakeTask(en.ctx, "w1")
	if err != nil || p == nil || p.JobID != first.ID {
		t.Fatalf("the result's next task: %+v %v, want the task of %s", p, err, first.ID)
	}
	release()
	stillWaiting(t, got, "the result took the task")

	second := en.create("one", nil)
	taskOf(t, got, second.ID)
}

// A held poll looks again when the result ends without asking, and when
// more tasks wait than results ask for, a poll takes one at once.
func TestHeldPollTakesWhatTheResultsLeave(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{PollTimeout: time.Minute}, oneTask())
	en.e.pollHold = time.Minute
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	first := en.create("one", nil)

	release := en.e.AskingFor("w1")
	got := pollAsync(en.ctx, en, "w1")
	parkedPoll(t, en.e, "w1")
	stillWaiting(t, got, "a result asks for the queued task")
	release() // its request ended before it asked
	release() // a second call changes nothing
	taskOf(t, got, first.ID)

	second, third := en.create("one", nil), en.create("one", nil)
	defer en.e.AskingFor("w1")()
	taskOf(t, pollAsync(en.ctx, en, "w1"), second.ID) // two tasks, one result
	if p, err := en.e.TakeTask(en.ctx, "w1"); err != nil || p == nil || p.JobID != third.ID {
		t.Fatalf("the result's next task: %+v %v, want the task of %s", p, err, third.ID)
	}
}

// When one of two results asking for two queued tasks ends without
// asking, a held poll takes a task at once: the results left no longer
// cover the tasks.
func TestHeldPollTakesATaskWhenAResultEndsWithoutAsking(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{PollTimeout: time.Minute}, oneTask())
	en.e.pollHold = time.Minute
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	first, second := en.create("one", nil), en.create("one", nil)

	gone, stays := en.e.AskingFor("w1"), en.e.AskingFor("w1")
	defer stays()
	got := pollAsync(en.ctx, en, "w1")
	parkedPoll(t, en.e, "w1")
	stillWaiting(t, got, "two results ask for the two queued tasks")
	gone()
	taskOf(t, got, first.ID)
	if p, err := en.e.TakeTask(en.ctx, "w1"); err != nil || p == nil || p.JobID != second.ID {
		t.Fatalf("the other result's next task: %+v %v, want the task of %s", p, err, second.ID)
	}
}

// A poll leaves a task to a result for pollHold at most: a result that
// never asks holds the poll back (it waits, parked), then lets it take
// the task.
func TestPollHoldIsBounded(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{PollTimeout: time.Minute}, oneTask())
	en.e.pollHold = 200 * time.Millisecond
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j := en.create("one", nil)
	defer en.e.AskingFor("w1")() // in flight for the whole test
	got := pollAsync(en.ctx, en, "w1")
	parkedPoll(t, en.e, "w1")
	taskOf(t, got, j.ID)
}
