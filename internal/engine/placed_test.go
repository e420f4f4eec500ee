package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func placedTask(id, worker string, at time.Time) store.QueuedTask {
	return store.QueuedTask{
		JobID: "j-" + id, Worker: worker, Score: store.Score(0, at, time.Minute),
		Run: store.TaskRun{ID: id, Attempt: 1, Spec: store.TaskSpec{Type: "work", Params: map[string]any{"big": "x"}}},
	}
}

// placed hands out the tasks this process queued in queue order, one to
// each taker; a claim drops those before the task it took; a failed write
// takes its tasks back; a miss in a worker's queue pauses its guesses,
// unless a claim of this process's (a steal included) may have taken the
// task.
func TestPlacedTasks(t *testing.T) {
	var p placed
	now := time.Now()
	a, b, c := placedTask("a", "w", now), placedTask("b", "w", now.Add(time.Millisecond)), placedTask("c", "w", now.Add(2*time.Millisecond))
	pend := placedTask("p", "", now)
	if err := p.write([]store.QueuedTask{c, a, pend}, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("write failed")
	if err := p.write([]store.QueuedTask{b}, func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("write: %v", err)
	}
	q := store.WorkerQueue("w")
	got, ok := p.take(q)
	if !ok || got.task.Run.ID != "a" || got.task.Run.Spec.Params != nil || got.task.JobID != "j-a" {
		t.Fatalf("first take: %+v %v, want a, without its params", got.task, ok)
	}
	taken, ok := p.take(store.PendingQueue("work"))
	if !ok || taken.task.Run.ID != "p" {
		t.Fatalf("pending take: %+v %v", taken.task, ok)
	}
	p.putBack(taken.task) // the worker may not run it: for another
	if again, ok := p.take(store.PendingQueue("work")); !ok || again.task.Run.ID != "p" {
		t.Fatalf("take after the put-back: %+v %v", again.task, ok)
	}
	p.putBack(taken.task)
	if err := p.write([]store.QueuedTask{b}, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	p.claimed(q, b) // a claim took b: a (taken) and anything before b is gone
	if got, ok := p.take(q); !ok || got.task.Run.ID != "c" {
		t.Fatalf("take after the claim of b: %+v %v, want c", got.task, ok)
	}
	if _, ok := p.take(q); ok {
		t.Fatal("a task handed out twice")
	}

	// A miss while a claim of this process's ran, or after one ran since
	// the guess, may be that claim's doing: it pauses nothing. One with no
	// claim about pauses the worker's guesses.
	p.putBack(c)
	done := p.claiming(q)
	g, _ := p.take(q)
	p.putBack(g.task)
	done(nil)
	p.missed(q, g) // taken while the claim ran
	g, _ = p.take(q)
	p.putBack(g.task)
	p.claiming(q)(nil)
	p.missed(q, g) // a claim ran since the guess
	g, ok = p.take(q)
	if !ok || g.task.Run.ID != "c" {
		t.Fatalf("a guess after misses a claim may explain: %+v %v, want c", g.task, ok)
	}
	p.putBack(g.task)
	// A steal from the queue is such a claim too, and forgets only the
	// task it took, wherever it stood.
	d := placedTask("d", "w", now.Add(3*time.Millisecond))
	if err := p.write([]store.QueuedTask{d}, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	g, _ = p.take(q)
	p.putBack(g.task)
	p.stealing(q)(&d)
	p.missed(q, g)
	g, ok = p.take(q)
	if !ok || g.task.Run.ID != "c" {
		t.Fatalf("a guess after a miss a steal may explain: %+v %v, want c", g.task, ok)
	}
	if _, ok := p.take(q); ok {
		t.Fatal("a stolen task handed out")
	}
	p.putBack(g.task)
	p.claiming(q)(&b) // a claim that took b drops nothing after it
	g, _ = p.take(q)
	p.putBack(g.task)
	p.missed(q, g)
	if _, ok := p.take(q); ok {
		t.Fatal("a guess right after a miss in the worker's queue")
	}
	p.forget("w")
	if _, ok := p.take(q); ok {
		t.Fatal("a guess for a worker gone offline")
	}
	// Of several queues, the one whose first task comes first.
	early := placedTask("e", "", now.Add(-time.Millisecond))
	early.Run.Spec.Type = "other"
	if err := p.write([]store.QueuedTask{early}, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	queues := []string{store.PendingQueue("work"), store.PendingQueue("other"), store.PendingQueue("none")}
	if name, ok := p.earliest(queues); !ok || name != store.PendingQueue("other") {
		t.Fatalf("earliest = %q %v, want the queue of e", name, ok)
	}
	p.take(store.PendingQueue("other"))
	if name, ok := p.earliest(queues); !ok || name != store.PendingQueue("work") {
		t.Fatalf("earliest = %q %v, want the queue of p", name, ok)
	}
}
