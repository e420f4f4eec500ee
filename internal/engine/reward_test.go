package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// rewardProbe wraps a store: it counts separate reputation adjustments,
// and with leave set it acts as a backend that leaves rewards to the
// caller (a sharded Redis store): it commits a write without its reward.
type rewardProbe struct {
	store.Store
	leave   bool
	adjusts atomic.Int64
}

func (s *rewardProbe) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	if s.leave {
		fx.Reward = nil
	}
	return s.Store.UpdateJob(ctx, j, fx)
}

func (s *rewardProbe) AdjustReputation(ctx context.Context, id string, delta, initial, floor, ceil float64) (float64, error) {
	s.adjusts.Add(1)
	return s.Store.AdjustReputation(ctx, id, delta, initial, floor, ceil)
}

// TestRewardWithResult: a success's reward is committed with the result
// (no separate adjustment) and the reputation event carries the stored
// value; a store that leaves the reward to the engine gets one separate
// adjustment, to the same value.
func TestRewardWithResult(t *testing.T) {
	t.Parallel()
	for _, leave := range []bool{false, true} {
		probe := &rewardProbe{Store: memory.New(memory.Options{}), leave: leave}
		en := newEnv(t, Config{Store: probe}, oneTask())
		en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
		start := 0.7
		if err := probe.SetReputation(en.ctx, "w1", start); err != nil {
			t.Fatal(err)
		}
		j := en.create("one", nil)
		p, err := en.e.NextTask(en.ctx, "w1", 2*time.Second)
		if err != nil || p == nil {
			t.Fatalf("no task: %+v %v", p, err)
		}
		resp, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: j.ID, TaskID: p.TaskID, Status: protocol.TaskSuccess})
		if err != nil || resp.Status != protocol.ResultAccepted {
			t.Fatalf("result: %+v %v", resp, err)
		}
		reward := en.e.cfg.Reputation.Reward
		want := start + reward
		en.waitReputation("w1", want)
		evs := en.eventsOf(EventReputation)
		if len(evs) != 1 || evs[0].WorkerID != "w1" || evs[0].Detail["reputation"] != want || evs[0].Detail["delta"] != reward {
			t.Fatalf("leave=%v: reputation events %+v, want one of w1 at %v (+%v)", leave, evs, want, reward)
		}
		wantAdjusts := int64(0)
		if leave {
			wantAdjusts = 1
		}
		if n := probe.adjusts.Load(); n != wantAdjusts {
			t.Fatalf("leave=%v: %d separate adjustments, want %d", leave, n, wantAdjusts)
		}
		// A second result for the task is ignored and rewards nothing.
		resp, err = en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: j.ID, TaskID: p.TaskID, Status: protocol.TaskSuccess})
		if err != nil || resp.Status != protocol.ResultIgnored {
			t.Fatalf("duplicate result: %+v %v", resp, err)
		}
		if reps, _ := probe.Reputations(en.ctx, "w1"); reps["w1"] != want || len(en.eventsOf(EventReputation)) != 1 {
			t.Fatalf("leave=%v: after a duplicate result, reputation %v", leave, reps["w1"])
		}
	}
}

// A reward that finds the worker at the ceiling changes nothing and
// announces nothing: a healthy worker's every task costs no reputation
// event (nor, with history on, the outbox entry one would take).
func TestRewardAtCeilingIsSilent(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	for range 2 {
		j := en.create("one", nil)
		p, err := en.e.NextTask(en.ctx, "w1", 2*time.Second)
		if err != nil || p == nil {
			t.Fatalf("no task: %+v %v", p, err)
		}
		if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: j.ID, TaskID: p.TaskID, Status: protocol.TaskSuccess}); err != nil {
			t.Fatal(err)
		}
		en.waitEnd(j.ID)
	}
	if evs := en.eventsOf(EventReputation); len(evs) != 0 {
		t.Fatalf("reputation events for a worker at the ceiling: %+v", evs)
	}
	if reps, err := en.store.Reputations(en.ctx, "w1"); err != nil || reps["w1"] != 1 {
		t.Fatalf("reputation %v %v", reps, err)
	}
}
