package history

import (
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// EventType names something that happened. The engine's event types map onto
// these one to one; a backend stores any non-empty type.
type EventType string

// Event types.
const (
	JobCreated       EventType = "job_created"
	StateEntered     EventType = "state_entered"
	HandlerFailed    EventType = "handler_failed"
	TaskDispatched   EventType = "task_dispatched"
	TaskWaiting      EventType = "task_waiting"
	TaskStarted      EventType = "task_started"
	TaskResult       EventType = "task_result"
	TaskRetry        EventType = "task_retry"
	TaskTimeout      EventType = "task_timeout"
	LateResult       EventType = "late_result"
	ApprovalAsked    EventType = "approval_requested"
	Approval         EventType = "approval"
	Progress         EventType = "progress"
	JobEnded         EventType = "job_ended"
	JobRetried       EventType = "job_retried"
	CancelTask       EventType = "cancel_task"
	WorkerRegistered EventType = "worker_registered"
	WorkerOffline    EventType = "worker_offline"
	WorkerEvent      EventType = "worker_event"
	Reputation       EventType = "reputation"
	WebhookAttempt   EventType = "webhook_attempt"
)

// Event is one entry of the audit trail. Worker-only events have no JobID.
// Its JSON names follow upstream's history rows (event_id, timestamp,
// event_type, previous_state).
//
// Backends keep times in UTC with microsecond precision (PostgreSQL's), and
// strings as valid UTF-8 without NUL bytes (invalid bytes and NULs become
// U+FFFD), so that every backend gives back the same event.
type Event struct {
	// ID identifies the event; Append is idempotent on it. It must be a
	// UUID; the Recorder fills in a new (time-ordered) one when empty.
	ID string `json:"event_id"`
	// Time is when it happened (not when it was persisted); the Recorder
	// fills in the current time when zero.
	Time      time.Time `json:"timestamp"`
	Type      EventType `json:"event_type"`
	JobID     string    `json:"job_id,omitempty"`
	Blueprint string    `json:"blueprint,omitempty"`
	Client    string    `json:"client,omitempty"`
	State     string    `json:"state,omitempty"` // state entered, or the job's state
	PrevState string    `json:"previous_state,omitempty"`
	TaskID    string    `json:"task_id,omitempty"`
	WorkerID  string    `json:"worker_id,omitempty"`
	Attempt   int       `json:"attempt,omitempty"`
	// Detail is the snapshot of the relevant context (dispatch decision,
	// error, result status, ...). It must encode as JSON; it comes back as
	// decoded JSON (numbers as float64). An empty Detail comes back nil.
	Detail map[string]any `json:"detail,omitempty"`

	// Job, when set, is the job as the client API shows it after the change.
	// It is not stored with the event: it updates the job's summary, which
	// Store.Job and Store.ListJobs read. JobID defaults to Job.ID, Client
	// and Blueprint to the job's.
	Job *protocol.Job `json:"-"`
	// LiveStore, with Job, is the id of the live store the job lives in
	// (see LiveStores); "" leaves the recorded one.
	LiveStore string `json:"-"`

	// enc caches the encoded form: the Recorder encodes at Record time, so
	// that later changes to Detail or Job by the caller are not seen.
	enc *Encoded
}
