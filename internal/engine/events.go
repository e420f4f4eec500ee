package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// EventType names something that happened.
type EventType string

// Event types.
const (
	EventJobCreated       EventType = "job_created"
	EventStateEntered     EventType = "state_entered"
	EventHandlerFailed    EventType = "handler_failed"
	EventTaskDispatched   EventType = "task_dispatched"
	EventTaskWaiting      EventType = "task_waiting" // no eligible worker yet
	EventTaskStarted      EventType = "task_started"
	EventTaskResult       EventType = "task_result"
	EventTaskRetry        EventType = "task_retry"
	EventTaskTimeout      EventType = "task_timeout"
	EventLateResult       EventType = "late_result"
	EventApprovalAsked    EventType = "approval_requested" // the job waits for a human
	EventApproval         EventType = "approval"
	EventProgress         EventType = "progress"
	EventJobEnded         EventType = "job_ended"   // any terminal status
	EventJobRetried       EventType = "job_retried" // a failed or quarantined job runs again
	EventCancelTask       EventType = "cancel_task"
	EventWorkerRegistered EventType = "worker_registered"
	EventWorkerOffline    EventType = "worker_offline"
	EventWorkerEvent      EventType = "worker_event"
	EventReputation       EventType = "reputation"
	EventWebhookAttempt   EventType = "webhook_attempt"
)

// Event is one thing that happened. Events of a job write are committed to
// the store's outbox with it (Config.EncodeEvent) and reported to
// Config.OnEvent after the commit.
type Event struct {
	ID        string // time-ordered UUID, the same in the outbox and in OnEvent
	Type      EventType
	Time      time.Time
	Job       *store.Job // snapshot after the change; nil for worker-only events
	JobID     string
	State     string // state entered, or the job's state
	PrevState string
	TaskID    string
	WorkerID  string
	Detail    map[string]any
}

// summaryEvents are the events after which a job's summary (as history keeps
// it) changes in a way worth a snapshot: the last of them in a write
// carries the job (see Config.EncodeEvent). Snapshots on every event would
// make a fan-out's history cost grow with the square of its width.
var summaryEvents = map[EventType]bool{
	EventJobCreated: true, EventStateEntered: true, EventApprovalAsked: true, EventApproval: true, EventJobEnded: true,
	EventJobRetried: true,
}

// prepare fills in an event's id, job id and (for events of a write) job.
func prepare(ev *Event, j *store.Job) {
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.Job == nil && j != nil {
		ev.Job = j
	}
	if ev.JobID == "" && ev.Job != nil {
		ev.JobID = ev.Job.ID
	}
}

func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// encodeEvents prepares the events of a write to job j and encodes them for
// the outbox. For each job, the last summary event carries its snapshot.
func (e *Engine) encodeEvents(events []Event, j *store.Job) ([][]byte, error) {
	for i := range events {
		prepare(&events[i], j)
	}
	if e.cfg.EncodeEvent == nil || len(events) == 0 {
		return nil, nil
	}
	snapshot := map[string]int{}
	for i, ev := range events {
		if summaryEvents[ev.Type] && ev.Job != nil {
			snapshot[ev.JobID] = i
		}
	}
	out := make([][]byte, 0, len(events))
	for i, ev := range events {
		last, ok := snapshot[ev.JobID]
		b, err := e.cfg.EncodeEvent(ev, ok && last == i)
		if err != nil {
			return nil, fmt.Errorf("encode %s event: %w", ev.Type, err)
		}
		if b != nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// publish reports an event that belongs to no job write: it is appended to
// the outbox on its own, then reported to OnEvent. An outbox that cannot
// take it is logged; the event still reaches OnEvent.
func (e *Engine) publish(ctx context.Context, ev Event) {
	prepare(&ev, nil)
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	if e.cfg.EncodeEvent != nil {
		b, err := e.cfg.EncodeEvent(ev, false)
		if err == nil && b != nil {
			err = e.store.AppendEvents(ctx, ev.JobID, b)
		}
		if err != nil {
			e.log.Error("event not kept in the outbox", "type", ev.Type, "job_id", ev.JobID, "worker_id", ev.WorkerID, "error", err)
		}
	}
	e.cfg.OnEvent(ev)
}
