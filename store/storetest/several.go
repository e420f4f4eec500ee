package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// testSeveralInWrite: one write carries several claims, once-keys and
// rewards (the writes of several tasks of one job, combined): all apply
// with it, in their order, or none does.
func testSeveralInWrite(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	now := time.Now()
	j := newJob("sw-job")
	q := store.WorkerQueue("owner")
	var tasks []store.QueuedTask
	for i, id := range []string{"sw1", "sw2", "sw3", "sw4", "sw5"} {
		tasks = append(tasks, queued(j.ID, id, "owner", "x", 0, now.Add(time.Duration(i)*time.Microsecond)))
	}
	must(t, s.CreateJob(ctx, j, store.Effects{Enqueue: tasks}))
	must(t, s.PutValue(ctx, "sw:taken", "x", 0))

	// refused writes one effect list that cannot all apply, and checks
	// that nothing of it was.
	refused := func(what string, want error, fx store.Effects) {
		t.Helper()
		stale := j.Clone()
		stale.CurrentState = "changed"
		fx.Events = [][]byte{[]byte("lost")}
		if err := s.UpdateJob(ctx, stale, fx); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if got, err := s.GetJob(ctx, j.ID); err != nil || got.Version != j.Version || got.CurrentState == "changed" {
			t.Fatalf("%s wrote the job: %+v %v", what, got, err)
		}
		if run, _ := s.RunningTasks(ctx, "owner"); len(run) != 0 {
			t.Fatalf("%s claimed %+v", what, run)
		}
		if v, _ := s.GetValue(ctx, "sw:fresh"); v != "" {
			t.Fatalf("%s set a once-key: %q", what, v)
		}
		if n, _ := s.EventCount(ctx); n != 0 {
			t.Fatalf("%s wrote %d events", what, n)
		}
	}
	claim := func(id string, within int) store.Claim {
		return store.Claim{Queue: q, TaskID: id, Worker: "owner", Within: within}
	}
	refused("a task claimed twice", store.ErrNotHead, store.Effects{Claims: []store.Claim{claim("sw1", 1), claim("sw1", 1)}})
	// sw3 is second once sw1 is claimed: not the head.
	refused("a claim behind the head", store.ErrNotHead, store.Effects{Claims: []store.Claim{claim("sw1", 1), claim("sw3", 1)}})
	refused("a taken once-key after a free one", store.ErrOnceTaken, store.Effects{
		Claims: []store.Claim{claim("sw1", 1)},
		Onces:  []store.Once{{Key: "sw:fresh", Value: "1", TTL: time.Hour}, {Key: "sw:taken", Value: "1"}},
	})
	refused("one once-key twice", store.ErrOnceTaken, store.Effects{
		Onces: []store.Once{{Key: "sw:fresh", Value: "1"}, {Key: "sw:fresh", Value: "2"}},
	})

	// All at once: sw1 heads the queue, sw2 heads it once sw1 is claimed,
	// sw5 is within two once sw1, sw2 and sw4 are.
	rewards := []*store.Reward{
		{Worker: "w", Delta: 0.25, Initial: 0.5, Floor: 0, Ceiling: 1},
		{Worker: "w", Delta: -0.125, Initial: 0.5, Floor: 0, Ceiling: 1},
		{Worker: "v", Delta: 0.5, Initial: 0.25, Floor: 0, Ceiling: 1},
	}
	must(t, s.UpdateJob(ctx, j, store.Effects{
		Claims:  []store.Claim{claim("sw1", 1), claim("sw2", 1), claim("sw4", 2), claim("sw5", 2)},
		Onces:   []store.Once{{Key: "sw:fresh", Value: "1", TTL: time.Hour}, {Key: "sw:other", Value: "2", TTL: time.Hour}},
		Rewards: rewards,
	}))
	run, err := s.RunningTasks(ctx, "owner")
	must(t, err)
	if len(run) != 4 {
		t.Fatalf("running after four claims: %+v", run)
	}
	if next, err := s.ClaimNext(ctx, q, "owner"); err != nil || next == nil || next.Run.ID != "sw3" {
		t.Fatalf("left in the queue: %+v %v, want sw3", next, err)
	}
	for key, want := range map[string]string{"sw:fresh": "1", "sw:other": "2"} {
		if v, err := s.GetValue(ctx, key); err != nil || v != want {
			t.Fatalf("once-key %s = %q %v, want %s", key, v, err, want)
		}
	}
	if !rewards[0].Applied {
		t.Log("the backend leaves rewards to the caller")
		for _, r := range rewards {
			if r.Applied {
				t.Fatalf("rewards applied in part: %+v", rewards)
			}
		}
		return
	}
	// Each reward applies after the ones before it.
	for i, want := range [][2]float64{{0.5, 0.75}, {0.75, 0.625}, {0.25, 0.75}} {
		if r := rewards[i]; !r.Applied || r.Before != want[0] || r.Value != want[1] {
			t.Fatalf("reward %d: %+v, want %v -> %v", i, r, want[0], want[1])
		}
	}
	reps, err := s.Reputations(ctx, "w", "v")
	must(t, err)
	if reps["w"] != 0.625 || reps["v"] != 0.75 {
		t.Fatalf("reputations after the rewards: %v", reps)
	}
}
