package engine

import (
	"context"
	"errors"
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
		fx.Rewards = nil
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

// onceProbe counts the once-keys set apart from a commit.
type onceProbe struct {
	store.Store
	sets atomic.Int64
}

func (s *onceProbe) SetOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	s.sets.Add(1)
	return s.Store.SetOnce(ctx, key, ttl)
}

// TestResultOnce: an applied result sets its once-key in its commit (no
// SetOnce); the same key again applies nothing and announces nothing; an
// ignored result sets the key alone, and once only.
func TestResultOnce(t *testing.T) {
	t.Parallel()
	probe := &onceProbe{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: probe}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j := en.create("one", nil)
	p, err := en.e.NextTask(en.ctx, "w1", 2*time.Second)
	if err != nil || p == nil {
		t.Fatalf("no task: %+v %v", p, err)
	}
	res := protocol.TaskResult{JobID: j.ID, TaskID: p.TaskID, Status: protocol.TaskSuccess}
	once := &store.Once{Key: "replay:sig-1", Value: "1", TTL: time.Minute}
	resp, err := en.e.SubmitResultOnce(en.ctx, "w1", res, once)
	if err != nil || resp.Status != protocol.ResultAccepted {
		t.Fatalf("result: %+v %v", resp, err)
	}
	if v, err := probe.GetValue(en.ctx, once.Key); err != nil || v != "1" || probe.sets.Load() != 0 {
		t.Fatalf("once-key after the applied result = %q %v, %d SetOnce calls; want it set by the commit", v, err, probe.sets.Load())
	}
	late := len(en.eventsOf(EventLateResult))
	if _, err := en.e.SubmitResultOnce(en.ctx, "w1", res, once); !errors.Is(err, store.ErrOnceTaken) {
		t.Fatalf("the same once-key again: %v, want ErrOnceTaken", err)
	}
	if n := len(en.eventsOf(EventLateResult)); n != late {
		t.Fatalf("a result refused by its once-key was announced as late (%d events, want %d)", n, late)
	}
	other := &store.Once{Key: "replay:sig-2", Value: "1", TTL: time.Minute}
	sets := probe.sets.Load()
	if resp, err := en.e.SubmitResultOnce(en.ctx, "w1", res, other); err != nil || resp.Status != protocol.ResultIgnored {
		t.Fatalf("a late result with a new key: %+v %v, want ignored", resp, err)
	}
	if v, _ := probe.GetValue(en.ctx, other.Key); v == "" || probe.sets.Load() != sets+1 {
		t.Fatalf("an ignored result's key = %q after %d SetOnce calls, want it set by one", v, probe.sets.Load()-sets)
	}
	if _, err := en.e.SubmitResultOnce(en.ctx, "w1", res, other); !errors.Is(err, store.ErrOnceTaken) {
		t.Fatalf("an ignored result's key again: %v, want ErrOnceTaken", err)
	}
	if n := len(en.eventsOf(EventLateResult)); n != late+1 {
		t.Fatalf("late-result events = %d, want %d", n, late+1)
	}
}
