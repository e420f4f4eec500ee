package storetest

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// testReward: a reputation change committed with a job write
// (Effects.Rewards) lands with the write and the value it reports is the
// one stored; a refused write (conflict, taken once-key, bad reward)
// changes no reputation; racing writers that retry after conflicts add
// one reward per successful write. A backend that leaves rewards to the
// caller (Applied false) must write no reputation at all.
func testReward(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	rep := func(id string) (float64, bool) {
		t.Helper()
		reps, err := s.Reputations(ctx, id)
		must(t, err)
		r, ok := reps[id]
		return r, ok
	}

	// 0.1 + 0.2 is not 0.3 in binary (nor in Go, outside constants): the
	// value must travel exactly.
	initial, delta := 0.1, 0.2
	sum := initial + delta
	r := &store.Reward{Worker: "w", Delta: delta, Initial: initial, Floor: 0, Ceiling: 1}
	must(t, s.CreateJob(ctx, newJob("j"), store.Effects{Rewards: []*store.Reward{r}}))
	applies := r.Applied
	if !applies {
		t.Log("the backend leaves rewards to the caller")
		if got, ok := rep("w"); ok {
			t.Fatalf("reward not applied, yet reputation = %v", got)
		}
	} else if got, _ := rep("w"); r.Value != sum || got != r.Value || r.Before != initial {
		t.Fatalf("reward with the create: value %v (before %v), stored %v, want %v (before %v)", r.Value, r.Before, got, sum, initial)
	}
	want := func() float64 {
		if applies {
			return sum
		}
		return math.NaN()
	}()
	same := func(what string) {
		t.Helper()
		got, ok := rep("w")
		if applies && got != want || !applies && ok {
			t.Fatalf("%s: reputation = %v (set %v), want %v", what, got, ok, want)
		}
	}

	// A refused write: version conflict.
	j, err := s.GetJob(ctx, "j")
	must(t, err)
	stale, err := s.GetJob(ctx, "j")
	must(t, err)
	j.CurrentState = "next"
	up := &store.Reward{Worker: "w", Delta: 0.75, Initial: 1, Floor: 0, Ceiling: 1}
	must(t, s.UpdateJob(ctx, j, store.Effects{Rewards: []*store.Reward{up}}))
	if up.Applied != applies || applies && (up.Value != 1 || up.Before != sum) {
		t.Fatalf("reward clamped to the ceiling: %+v", up)
	}
	if applies {
		want = 1
	}
	same("after a clamped reward")
	lost := &store.Reward{Worker: "w", Delta: -0.5, Initial: 1, Floor: 0, Ceiling: 1}
	if err := s.UpdateJob(ctx, stale, store.Effects{Rewards: []*store.Reward{lost}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if lost.Applied {
		t.Fatalf("a refused write reports its reward applied: %+v", lost)
	}
	same("after a refused write")

	// A refused write: the once-key is taken.
	must(t, s.PutValue(ctx, "taken", "x", 0))
	err = s.UpdateJob(ctx, j, store.Effects{Onces: []store.Once{{Key: "taken", Value: "y"}}, Rewards: []*store.Reward{lost}})
	if !errors.Is(err, store.ErrOnceTaken) || lost.Applied {
		t.Fatalf("write with a taken once-key: %v, reward %+v", err, lost)
	}
	same("after a write refused for its once-key")

	// A bad reward: refused, nothing written.
	for _, bad := range []*store.Reward{
		{Delta: 0.1, Initial: 1, Floor: 0, Ceiling: 1},
		{Worker: "w", Delta: math.NaN(), Initial: 1, Floor: 0, Ceiling: 1},
		{Worker: "w", Delta: 0.1, Initial: 1, Floor: 1, Ceiling: 0},
	} {
		before := j.Version
		if err := s.UpdateJob(ctx, j, store.Effects{Rewards: []*store.Reward{bad}}); err == nil || bad.Applied {
			t.Fatalf("bad reward %+v accepted: %v", bad, err)
		}
		if got, _ := s.GetJob(ctx, "j"); got.Version != before || j.Version != before {
			t.Fatalf("a write with a bad reward moved the version: %d -> %d", before, got.Version)
		}
	}
	same("after bad rewards")

	// Racing writers, each retrying after a conflict: one reward per
	// successful write, none for a refused one.
	const step = 1.0 / 1024 // exact in binary: the sum is exact too
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 8 {
				for {
					cur, err := s.GetJob(ctx, "j")
					if err != nil {
						t.Error(err)
						return
					}
					cur.TransitionCount++
					r := &store.Reward{Worker: "race", Delta: step, Initial: 0, Floor: 0, Ceiling: 1}
					err = s.UpdateJob(ctx, cur, store.Effects{Rewards: []*store.Reward{r}})
					if err == nil {
						if r.Applied != applies {
							t.Errorf("reward applied: %v, want %v", r.Applied, applies)
						}
						wins.Add(1)
						break
					}
					if !errors.Is(err, store.ErrConflict) || r.Applied {
						t.Errorf("update: %v, reward %+v", err, r)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got, ok := rep("race")
	if n := wins.Load(); n != 48 || applies && got != float64(n)*step || !applies && ok {
		t.Fatalf("%d writes won, reputation %v (set %v), want %v", n, got, ok, float64(n)*step)
	}
}
