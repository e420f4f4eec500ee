package console

import (
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
)

// TestAttemptsFailThenSucceed: a task that fails on one worker and then
// succeeds on another has two attempts, the first with its error and
// worker, the second clean. The retry event carries the attempt it
// schedules (2), not the one that failed.
func TestAttemptsFailThenSucceed(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ev := func(typ engine.EventType, worker string, detail map[string]any) history.Event {
		at = at.Add(time.Second)
		return history.Event{Type: history.EventType(typ), Time: at, TaskID: "t1", WorkerID: worker, Detail: detail}
	}
	events := []history.Event{
		ev(engine.EventTaskDispatched, "w1", map[string]any{"type": "echo", "attempt": 1.0, "strategy": "cheapest", "reason": "cheapest: price 1", "candidates": 2.0}),
		ev(engine.EventTaskStarted, "w1", map[string]any{"type": "echo", "attempt": 1.0}),
		ev(engine.EventTaskResult, "w1", map[string]any{"type": "echo", "attempt": 1.0, "status": "failure",
			"error": map[string]any{"code": "TRANSIENT_ERROR", "message": "disk full"}}),
		ev(engine.EventTaskRetry, "w1", map[string]any{"type": "echo", "attempt": 2.0, "code": "TRANSIENT_ERROR", "message": "disk full"}),
		ev(engine.EventTaskDispatched, "w2", map[string]any{"type": "echo", "attempt": 2.0, "strategy": "default", "reason": "only candidate", "candidates": 1.0}),
		ev(engine.EventTaskStarted, "w2", map[string]any{"type": "echo", "attempt": 2.0}),
		ev(engine.EventTaskResult, "w2", map[string]any{"type": "echo", "attempt": 2.0, "status": "success", "ran_for": 0.5}),
	}
	got := attempts(events, map[string]map[string]float64{"w1": {"echo": 1}, "w2": {"echo": 2}})
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2: %+v", len(got), got)
	}
	first, second := got[0], got[1]
	if first.N != 1 || first.WorkerID != "w1" || first.Status != "failure" || first.Error != "TRANSIENT_ERROR: disk full" || first.Price != "1" {
		t.Errorf("attempt 1 = %+v, want w1, failure, TRANSIENT_ERROR: disk full, price 1", *first)
	}
	if second.N != 2 || second.WorkerID != "w2" || second.Status != "success" || second.Error != "" || second.Price != "2" {
		t.Errorf("attempt 2 = %+v, want w2, success, no error, price 2", *second)
	}
	if d := first.Decision(); d != "cheapest: price 1" {
		t.Errorf("attempt 1's decision = %q, want the strategy said once", d)
	}
	if d := second.Decision(); d != "default: only candidate" {
		t.Errorf("attempt 2's decision = %q", d)
	}
	if d := (&attempt{Strategy: "best_value", Reason: "best value: price 1 / reputation 1.000 = 1"}).Decision(); strings.Count(d, "best value") != 1 {
		t.Errorf("best_value decision = %q", d)
	}
}
