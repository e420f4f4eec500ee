package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// Task is one task handed to a Handler. Its methods are safe for concurrent
// use.
type Task struct {
	p         protocol.TaskPayload
	rawParams json.RawMessage // params exactly as received
	raw       []byte          // the whole task as received
	w         *Worker
	c         *conn  // the orchestrator that delivered the task
	traceID   string // of the task's span, "" when it has none
	// log carries the task's ids; it is made when first used, as a
	// logger's With costs as much as the rest of a short task's handling.
	log     *slog.Logger
	logOnce sync.Once
	dir     string // <TaskFilesDir>/<task_id>, created on demand
	// dirUsed is set once dir may exist: only then is it deleted at the
	// task's end (most tasks never make one).
	dirUsed atomic.Bool
}

// ID returns the task id.
func (t *Task) ID() string { return t.p.TaskID }

// JobID returns the id of the job the task belongs to.
func (t *Task) JobID() string { return t.p.JobID }

// Type returns the task type, which is the skill name.
func (t *Task) Type() string { return t.p.Type }

// Params returns a copy of the task's parameters (numbers are float64, as
// encoding/json decodes them). Use Decode for typed access.
func (t *Task) Params() map[string]any {
	var m map[string]any
	if json.Unmarshal(t.rawParams, &m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// Decode unmarshals the task's parameters into v (a pointer, typically to a
// struct). A decoding failure is an INVALID_INPUT_ERROR, so a handler may
// return it as it is.
func (t *Task) Decode(v any) error {
	raw := t.rawParams
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return InvalidInput(fmt.Errorf("task params: %w", err))
	}
	return nil
}

// Attempt returns the orchestrator's attempt number for this task (1 for
// the first try; 0 when the orchestrator does not say).
func (t *Task) Attempt() int { return t.p.Attempt }

// Priority returns the task's priority.
func (t *Task) Priority() float64 { return t.p.Priority }

// Deadline returns when the orchestrator stops accepting the task's result,
// if it set a deadline. The handler's ctx carries the same deadline.
func (t *Task) Deadline() (time.Time, bool) {
	if t.p.Deadline <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(t.p.Deadline), 0), true
}

// Metadata returns a copy of the task's metadata.
func (t *Task) Metadata() map[string]any { return maps.Clone(t.p.Metadata) }

// TracingContext returns a copy of the task's W3C trace context
// (traceparent, tracestate).
func (t *Task) TracingContext() map[string]string { return maps.Clone(t.p.TracingContext) }

// Logger returns a logger carrying worker_id, task_id and job_id.
func (t *Task) Logger() *slog.Logger {
	t.logOnce.Do(func() {
		t.log = t.w.log.With("task_id", t.p.TaskID, "job_id", t.p.JobID)
		if t.traceID != "" {
			t.log = t.log.With("trace_id", t.traceID)
		}
	})
	return t.log
}

// SendProgress reports progress: fraction from 0 to 1 and a message. It goes
// to the orchestrator that delivered the task, over its WebSocket when one is
// open, else over HTTP. Failures are returned; a handler may ignore them.
func (t *Task) SendProgress(ctx context.Context, fraction float64, message string) error {
	if math.IsNaN(fraction) || fraction < 0 || fraction > 1 {
		return fmt.Errorf("progress %v is not a fraction between 0 and 1", fraction)
	}
	return t.SendEvent(ctx, protocol.EventProgress, map[string]any{"progress": fraction, "message": message})
}

// SendEvent sends a custom event about this task (a blueprint may react to
// its type), the same way as SendProgress.
func (t *Task) SendEvent(ctx context.Context, eventType string, payload map[string]any) error {
	if eventType == "" {
		return errors.New("empty event type")
	}
	if payload == nil {
		payload = map[string]any{}
	}
	ev := protocol.WorkerEvent{
		EventID:        uuid.NewString(),
		WorkerID:       t.w.cfg.ID,
		OriginWorkerID: t.w.cfg.ID,
		EventType:      eventType,
		Payload:        payload,
		OriginTaskID:   t.p.TaskID,
		BubblingChain:  []string{},
		TargetJobID:    t.p.JobID,
		TargetTaskID:   t.p.TaskID,
		TraceContext:   t.p.TracingContext,
	}
	if err := t.c.sendEvent(ctx, ev); err != nil {
		t.Logger().Debug("event not sent", "event_type", eventType, "error", err)
		return err
	}
	return nil
}
