package engine

import (
	"time"

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
	EventApproval         EventType = "approval"
	EventProgress         EventType = "progress"
	EventJobEnded         EventType = "job_ended" // any terminal status
	EventCancelTask       EventType = "cancel_task"
	EventWorkerRegistered EventType = "worker_registered"
	EventWorkerOffline    EventType = "worker_offline"
	EventWorkerEvent      EventType = "worker_event"
	EventReputation       EventType = "reputation"
	EventWebhookAttempt   EventType = "webhook_attempt"
)

// Event is one thing that happened, reported to Config.OnEvent after it was
// committed.
type Event struct {
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
