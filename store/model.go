package store

import (
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Job is the live record of one blueprint run. Store implementations treat
// it as a document: they keep copies, never the caller's pointer.
type Job struct {
	ID              string             `json:"id"`
	Blueprint       string             `json:"blueprint_name"`
	Status          protocol.JobStatus `json:"status"`
	CurrentState    string             `json:"current_state"`
	InitialData     map[string]any     `json:"initial_data"`
	StateHistory    map[string]any     `json:"state_history"`
	Progress        float64            `json:"progress"`
	ProgressMessage string             `json:"progress_message,omitempty"`
	ErrorMessage    string             `json:"error_message,omitempty"`
	Result          any                `json:"result,omitempty"`
	ParentJobID     string             `json:"parent_job_id,omitempty"`
	ChildJobID      string             `json:"child_job_id,omitempty"`
	Client          Client             `json:"client"`
	WebhookURL      string             `json:"webhook_url,omitempty"`
	// Policy is the create body's policy, sent with every task of the job
	// and of its child jobs; its allowed_skills bounds the task types.
	Policy map[string]any `json:"policy,omitempty"`
	// Costs sums the numeric costs of the job's task results, by name.
	Costs      map[string]float64 `json:"costs,omitempty"`
	CreatedAt  time.Time          `json:"created_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
	FinishedAt *time.Time         `json:"finished_at,omitempty"`

	// Engine bookkeeping.
	Tasks         map[string]*TaskRun `json:"tasks,omitempty"`          // outstanding tasks by id
	Routes        map[string]string   `json:"routes,omitempty"`         // outcome → state while waiting
	Aggregator    string              `json:"aggregator,omitempty"`     // fan-in state while parallel
	BranchResults map[string]Result   `json:"branch_results,omitempty"` // ended branches
	LastResult    *Result             `json:"last_result,omitempty"`
	Approval      *Approval           `json:"approval,omitempty"`
	DoneTasks     map[string]string   `json:"done_tasks,omitempty"` // task id → final status, for duplicate results
	RetryCount    int                 `json:"retry_count,omitempty"`
	// FailedState is the state whose failed task (or child job) took the
	// job along its failure route into the state it is in now: where a
	// retry of a job that ended there, in a failure end state, starts
	// again (Engine.RetryJob). Any later transition clears it.
	FailedState     string            `json:"failed_state,omitempty"`
	TransitionCount int               `json:"transition_count"`
	TraceContext    map[string]string `json:"trace_context,omitempty"`
	Dispatches      []Dispatch        `json:"dispatches,omitempty"` // every placement, oldest first
	// DataMetadata describes the blob objects that results referred to
	// (the data_metadata of every successful result, by URI), to be sent
	// as params_metadata when a later task's param names the same object.
	DataMetadata map[string]protocol.FileMetadata `json:"data_metadata,omitempty"`
	// Blobs says the job has objects in blob storage, which are deleted
	// when its retention ends.
	Blobs bool `json:"blobs,omitempty"`

	// Format is the format the record was written in (FormatVersion when
	// a store writes it; 0 for records from before formats were numbered).
	Format int `json:"format_version,omitempty"`

	// BranchesLeft and BranchesDone count the branches of a fan-out that
	// are outstanding and ended, so that a branch result need not read the
	// others.
	BranchesLeft int `json:"branches_left,omitempty"`
	BranchesDone int `json:"branches_done,omitempty"`

	// Version is the optimistic-concurrency counter: UpdateJob succeeds only
	// when it equals the stored version, then increments it.
	Version int64 `json:"version"`

	// Loaded says which parts (Tasks, BranchResults, DoneTasks, Dispatches)
	// the read of this copy loaded; see Parts. Not stored.
	Loaded Parts `json:"-"`
}

// Client is the client a job runs for, as stored (blueprint.Client is
// what handlers see).
type Client struct {
	Name   string         `json:"name"`
	Plan   string         `json:"plan,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// Result is a worker's answer to a task, as stored (blueprint.TaskResult
// is what handlers see).
type Result struct {
	TaskID   string              `json:"task_id"`
	Type     string              `json:"type,omitempty"`
	WorkerID string              `json:"worker_id,omitempty"`
	Status   string              `json:"status"`
	Data     map[string]any      `json:"data,omitempty"`
	Error    *protocol.TaskError `json:"error,omitempty"`
}

// Approval is a pending human decision.
type Approval struct {
	Message   string   `json:"message"`
	Decisions []string `json:"decisions"`
	// Token approves once, without the client token, until ExpiresAt.
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// TaskState is where an outstanding task is in its life.
type TaskState string

// Task states.
const (
	TaskQueued    TaskState = "queued"     // in a queue, waiting for a worker
	TaskRunning   TaskState = "running"    // picked up by a worker
	TaskRetryWait TaskState = "retry_wait" // failed, waiting for its backoff
)

// TaskRun is one outstanding task of a job (a single dispatch or a branch).
type TaskRun struct {
	ID       string    `json:"id"`
	Spec     TaskSpec  `json:"spec"`
	Strategy string    `json:"strategy"` // a blueprint.Strategy's name
	Branch   bool      `json:"branch,omitempty"`
	Attempt  int       `json:"attempt"`
	State    TaskState `json:"state"`
	WorkerID string    `json:"worker_id,omitempty"`
	Excluded []string  `json:"excluded,omitempty"` // workers that failed it
	// Blame lists the workers whose transient failure of the task costs
	// them reputation once another worker completes it: a failure that
	// every worker shares is the input's, not theirs.
	Blame      []string            `json:"blame,omitempty"`
	QueuedAt   time.Time           `json:"queued_at"`
	PickedUpAt *time.Time          `json:"picked_up_at,omitempty"`
	Deadline   *time.Time          `json:"deadline,omitempty"` // result deadline, if any
	Decision   *Decision           `json:"decision,omitempty"`
	LastError  *protocol.TaskError `json:"last_error,omitempty"`
	// TraceContext is the W3C trace context of the dispatch; the worker's
	// span continues it.
	TraceContext map[string]string `json:"trace_context,omitempty"`
	// ParamsMetadata describes the blob objects that params refer to, by
	// JSON path (sent as the payload's params_metadata).
	ParamsMetadata map[string]protocol.FileMetadata `json:"params_metadata,omitempty"`
}

// Decision explains one dispatch: who was chosen, how, among how many.
type Decision struct {
	WorkerID   string `json:"worker_id,omitempty"`
	Strategy   string `json:"strategy"`
	Candidates int    `json:"candidates"`
	Reason     string `json:"reason"`
}

// Dispatch records one placement of a task: the decision, when it was made,
// and for which attempt.
type Dispatch struct {
	Decision
	TaskID  string    `json:"task_id"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
}

// QueuedTask is a task waiting in a queue: a worker's own queue when a worker
// was chosen, or the pending queue of its type when none was eligible.
type QueuedTask struct {
	JobID  string  `json:"job_id"`
	Worker string  `json:"worker,omitempty"`
	Run    TaskRun `json:"run"`
	// Score orders a queue: lower is taken first. See Score.
	Score float64 `json:"score"`
}

// InQueueOrder reports whether a comes before b in a queue: by score,
// ties by task id (as Redis orders equal scores, by member).
func InQueueOrder(a, b *QueuedTask) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Run.ID < b.Run.ID
}

// Queue returns the name of the queue the task waits in.
func (q QueuedTask) Queue() string {
	if q.Worker != "" {
		return WorkerQueue(q.Worker)
	}
	return PendingQueue(q.Run.Spec.Type)
}

// WorkerQueue names the queue of tasks assigned to a worker.
func WorkerQueue(workerID string) string { return "worker:" + workerID }

// PendingQueue names the queue of tasks of a type that wait for any eligible
// worker.
func PendingQueue(taskType string) string { return "pending:" + taskType }

// Score orders tasks: higher priority first, equal priorities first in first
// out. Each unit of priority is worth aging of waiting time, so a task that
// has waited that much longer overtakes a task one priority unit above it
// and no priority starves.
func Score(priority float64, enqueued time.Time, aging time.Duration) float64 {
	return float64(enqueued.UnixMicro()) - priority*float64(aging.Microseconds())
}

// TimerKind says what a timer does when it fires.
type TimerKind string

// Timer kinds.
const (
	TimerDispatch  TimerKind = "dispatch"  // a task was not picked up in time
	TimerExecution TimerKind = "execution" // a picked-up task sent no result in time
	TimerResult    TimerKind = "result"    // a task's overall result deadline
	TimerRetry     TimerKind = "retry"     // re-dispatch a task after backoff
	TimerStep      TimerKind = "step"      // re-run a handler after backoff
	TimerWebhook   TimerKind = "webhook"   // deliver (or retry) a webhook
	TimerBlobs     TimerKind = "blobs"     // delete a job's blob objects once its retention ended
)

// Timer is a durable deadline attached to a job. Ref and Seq tell which task
// and which attempt it belongs to, so that a stale timer can be recognised
// and ignored.
type Timer struct {
	JobID string    `json:"job_id"`
	Kind  TimerKind `json:"kind"`
	Ref   string    `json:"ref,omitempty"`
	Seq   int       `json:"seq,omitempty"`
	At    time.Time `json:"at"`
}

// Key identifies a timer; adding a timer with an existing key moves it.
func (t Timer) Key() string {
	return t.JobID + "|" + string(t.Kind) + "|" + t.Ref + "|" + strconv.Itoa(t.Seq)
}

// ParseTimerKey is the inverse of Timer.Key (At is left zero).
func ParseTimerKey(key string) (Timer, bool) {
	parts := strings.Split(key, "|")
	if len(parts) != 4 {
		return Timer{}, false
	}
	seq, err := strconv.Atoi(parts[3])
	if err != nil {
		return Timer{}, false
	}
	return Timer{JobID: parts[0], Kind: TimerKind(parts[1]), Ref: parts[2], Seq: seq}, true
}

// Worker is a registered worker as the orchestrator knows it.
type Worker struct {
	ID                 string                       `json:"worker_id"`
	Type               string                       `json:"worker_type,omitempty"`
	Skills             []protocol.SkillInfo         `json:"supported_skills,omitempty"`
	AvailableSkills    []string                     `json:"available_skills,omitempty"`
	HotSkills          []string                     `json:"hot_skills,omitempty"`
	Resources          *protocol.Resources          `json:"resources,omitempty"`
	InstalledSoftware  map[string]string            `json:"installed_software,omitempty"`
	InstalledArtifacts []protocol.InstalledArtifact `json:"installed_artifacts,omitempty"`
	Capabilities       *protocol.Capabilities       `json:"capabilities,omitempty"`
	SkillsHash         string                       `json:"skills_hash,omitempty"`
	Status             string                       `json:"status"`
	Usage              *protocol.Usage              `json:"usage,omitempty"`
	CurrentTasks       []string                     `json:"current_tasks,omitempty"`
	MaxConcurrent      int                          `json:"max_concurrent_tasks,omitempty"`
	Metadata           map[string]any               `json:"metadata,omitempty"`
	RegisteredAt       time.Time                    `json:"registered_at"`
	LastSeen           time.Time                    `json:"last_seen"`
	ExpiresAt          time.Time                    `json:"expires_at"`
}

// HasSkill reports whether the worker offers the named skill.
func (w *Worker) HasSkill(name string) bool {
	for _, s := range w.Skills {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Cost returns the worker's price for a skill; ok is false when it has none.
func (w *Worker) Cost(skill string) (cost float64, ok bool) {
	if w.Capabilities == nil {
		return 0, false
	}
	cost, ok = w.Capabilities.CostPerSkill[skill]
	return cost, ok
}

// Lock is a held lock. Token is a fencing token: it grows with every
// acquisition of the same name, so a holder whose lease lapsed can be told
// apart from the current one.
type Lock struct {
	Name  string
	Token int64
}
