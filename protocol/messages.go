package protocol

import "encoding/json"

// Version is the newest RXON protocol version this implementation speaks,
// the one it announces.
const Version = "1.0b17"

// OldestVersion is the oldest RXON version the orchestrator speaks.
const OldestVersion = "1.0b13"

// SupportsVersion reports whether the orchestrator speaks an RXON version:
// 1.0b13 to 1.0b17 (CI runs the Python SDK on 1.0b13 and 1.0b17). The
// differences it bridges: float timestamps before 1.0b14 (rounded), and
// task signatures (sig) and policies, which older workers ignore.
func SupportsVersion(v string) bool {
	switch v {
	case "1.0b13", "1.0b14", "1.0b15", "1.0b16", "1.0b17":
		return true
	}
	return false
}

// NegotiateVersion is the version the orchestrator answers a worker in,
// as RXON does it: the orchestrator names its version in X-RXON-Version
// and the worker warns when it differs from its own. A worker that
// announces a supported version is answered in that version (no warning:
// the orchestrator speaks it); any other, or none, gets Version, and ok
// false when it announced one.
func NegotiateVersion(offered string) (version string, ok bool) {
	if SupportsVersion(offered) {
		return offered, true
	}
	return Version, offered == ""
}

// HTTP headers of the worker protocol and the client API, spelled as Go
// sends them (http.CanonicalHeaderKey; header names are case-insensitive,
// RXON writes X-Worker-ID and X-RXON-Version), so that setting or reading
// one copies nothing.
const (
	HeaderWorkerToken = "X-Worker-Token"
	HeaderWorkerID    = "X-Worker-Id"
	HeaderVersion     = "X-Rxon-Version"
	HeaderClientToken = "X-Client-Token"
	// HeaderIdempotencyKey on a job creation makes a repeat within 24 h
	// answer with the first job instead of creating another; the answer
	// to a repeat carries HeaderIdempotentReplayed.
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

// Worker route paths (all under WorkerPrefix).
const (
	WorkerPrefix      = "/_worker"
	PathRegister      = WorkerPrefix + "/workers/register"
	PathResult        = WorkerPrefix + "/tasks/result"
	PathEvents        = WorkerPrefix + "/events"
	PathToken         = WorkerPrefix + "/auth/token"
	PathTokenRefresh  = WorkerPrefix + "/auth/token/refresh"
	PathWorkerPattern = WorkerPrefix + "/workers/{worker_id}"
	PathNextPattern   = WorkerPrefix + "/workers/{worker_id}/tasks/next"
	PathWSPattern     = WorkerPrefix + "/ws/{worker_id}"
)

// Security is the signature block attached to signed messages.
type Security struct {
	Signature     string         `json:"signature,omitempty"`
	SignerID      string         `json:"signer_id,omitempty"`
	IdentityChain []string       `json:"identity_chain,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// SkillInfo describes one skill a worker offers.
type SkillInfo struct {
	Name          string                    `json:"name"`
	Type          string                    `json:"type,omitempty"`
	Description   string                    `json:"description,omitempty"`
	Version       string                    `json:"version,omitempty"`
	InputSchema   map[string]any            `json:"input_schema,omitempty"`
	OutputSchema  map[string]any            `json:"output_schema,omitempty"`
	EventsSchema  map[string]map[string]any `json:"events_schema,omitempty"`
	OutputStatus  []string                  `json:"output_statuses,omitempty"`
	SchemaDialect string                    `json:"schema_dialect,omitempty"`
	Properties    map[string]any            `json:"properties,omitempty"`
}

// HardwareDevice is one device of a worker, such as a GPU.
type HardwareDevice struct {
	Type       string         `json:"type"`
	Model      string         `json:"model,omitempty"`
	ID         string         `json:"id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Metrics    map[string]any `json:"metrics,omitempty"`
}

// Resources is a worker's hardware: devices plus free-form properties such as
// cpu_cores and ram_gb.
type Resources struct {
	Devices    []HardwareDevice `json:"devices,omitempty"`
	Properties map[string]any   `json:"properties,omitempty"`
}

// InstalledArtifact is a model or other artifact installed on a worker.
type InstalledArtifact struct {
	Name       string         `json:"name"`
	Version    string         `json:"version,omitempty"`
	Type       string         `json:"type,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Capabilities are a worker's identity, prices and extras.
type Capabilities struct {
	Hostname     string             `json:"hostname,omitempty"`
	IPAddress    string             `json:"ip_address,omitempty"`
	CostPerSkill map[string]float64 `json:"cost_per_skill,omitempty"`
	S3ConfigHash string             `json:"s3_config_hash,omitempty"`
	Extra        map[string]any     `json:"extra,omitempty"`
	// WebSockets is also sent at the top level: upstream orchestrators look
	// for it there, while the Python SDK puts it under Extra.
	WebSockets bool `json:"websockets,omitempty"`
}

// Registration is the body of POST /_worker/workers/register.
type Registration struct {
	WorkerID           string              `json:"worker_id"`
	WorkerType         string              `json:"worker_type,omitempty"`
	SupportedSkills    []SkillInfo         `json:"supported_skills,omitempty"`
	AvailableSkills    []string            `json:"available_skills,omitempty"`
	HotSkills          []string            `json:"hot_skills,omitempty"`
	Resources          *Resources          `json:"resources,omitempty"`
	InstalledSoftware  map[string]string   `json:"installed_software,omitempty"`
	InstalledArtifacts []InstalledArtifact `json:"installed_artifacts,omitempty"`
	Capabilities       *Capabilities       `json:"capabilities,omitempty"`
	SkillsHash         string              `json:"skills_hash,omitempty"`
	Security           *Security           `json:"security,omitempty"`
	Metadata           map[string]any      `json:"metadata,omitempty"`
	Timestamp          int64               `json:"timestamp"`
}

// DeviceUsage is the load of one device.
type DeviceUsage struct {
	UnitID      string         `json:"unit_id"`
	LoadPercent float64        `json:"load_percent"`
	Metrics     map[string]any `json:"metrics,omitempty"`
}

// Usage is a worker's current resource usage.
type Usage struct {
	CPULoadPercent float64       `json:"cpu_load_percent"`
	RAMUsedGB      float64       `json:"ram_used_gb"`
	DevicesUsage   []DeviceUsage `json:"devices_usage,omitempty"`
}

// Heartbeat is the body of PATCH /_worker/workers/{id}.
type Heartbeat struct {
	WorkerID string `json:"worker_id"`
	Status   string `json:"status"`
	Usage    *Usage `json:"usage,omitempty"`
	// CurrentTasks lists the tasks the worker runs, an empty list too (as
	// the Python SDK sends it): the orchestrator retries a task it has the
	// worker running that the list leaves out. Absent means "not reported".
	CurrentTasks    []string       `json:"current_tasks"`
	SupportedSkills []SkillInfo    `json:"supported_skills,omitempty"`
	AvailableSkills []string       `json:"available_skills,omitempty"`
	HotSkills       []string       `json:"hot_skills,omitempty"`
	SkillsHash      string         `json:"skills_hash,omitempty"`
	Security        *Security      `json:"security,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
	Timestamp       int64          `json:"timestamp"`
}

// HeartbeatResponse answers a heartbeat.
type HeartbeatResponse struct {
	Status          string   `json:"status"`
	RequireFullSync bool     `json:"require_full_sync,omitempty"`
	CancelTaskIDs   []string `json:"cancel_task_ids,omitempty"`
	// Reregister tells a worker the orchestrator no longer knows it.
	Reregister bool `json:"reregister,omitempty"`
}

// FileMetadata describes an object in blob storage.
type FileMetadata struct {
	URI      string         `json:"uri"`
	Size     int64          `json:"size"`
	ETag     string         `json:"etag,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// TaskPayload is what a worker receives from a long poll.
type TaskPayload struct {
	JobID          string                  `json:"job_id"`
	TaskID         string                  `json:"task_id"`
	Type           string                  `json:"type"`
	Params         map[string]any          `json:"params"`
	TracingContext map[string]string       `json:"tracing_context,omitempty"`
	ParamsMetadata map[string]FileMetadata `json:"params_metadata,omitempty"`
	Priority       float64                 `json:"priority"`
	Deadline       UnixSeconds             `json:"deadline,omitempty"` // when the orchestrator stops accepting the result
	Security       *Security               `json:"security,omitempty"`
	Metadata       map[string]any          `json:"metadata,omitempty"`
	Timestamp      int64                   `json:"timestamp"`
	Attempt        int                     `json:"attempt,omitempty"`
	// Policy is the job's policy (the create body's policy), such as
	// {"allowed_skills": [...]}: RXON 1.0b17 workers refuse a task whose
	// type it does not allow.
	Policy map[string]any `json:"policy,omitempty"`
	// Sig is the orchestrator's signature of the task (SignTask), when it
	// has ORCHESTRATOR_SECRET_KEY.
	Sig string `json:"sig,omitempty"`
}

// TaskError is the error part of a failed task result.
type TaskError struct {
	Code    string         `json:"code,omitempty"`
	Message string         `json:"message,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

// UnmarshalJSON accepts the object form and, like upstream, a plain string
// taken as the message.
func (e *TaskError) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*e = TaskError{Message: s}
		return nil
	}
	type plain TaskError
	return json.Unmarshal(b, (*plain)(e))
}

// TaskResult is the body of POST /_worker/tasks/result.
type TaskResult struct {
	JobID          string                  `json:"job_id"`
	TaskID         string                  `json:"task_id"`
	WorkerID       string                  `json:"worker_id,omitempty"`
	OriginWorkerID string                  `json:"origin_worker_id,omitempty"`
	Status         string                  `json:"status,omitempty"`
	Data           map[string]any          `json:"data,omitempty"`
	Error          *TaskError              `json:"error,omitempty"`
	DataMetadata   map[string]FileMetadata `json:"data_metadata,omitempty"`
	Security       *Security               `json:"security,omitempty"`
	Metadata       map[string]any          `json:"metadata,omitempty"`
	// Costs are what the attempt cost, by name (the Python SDK 1.0b20
	// sends execution_time_seconds and the handler's own costs). Finite,
	// non-negative numbers are added to the job's costs; other values are
	// left out.
	Costs     map[string]any `json:"costs,omitempty"`
	Timestamp int64          `json:"timestamp"`
}

// ResultResponse answers a task result: accepted with the transition taken,
// or ignored with a reason.
type ResultResponse struct {
	Status     string `json:"status"`
	Transition string `json:"transition,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	// NextTask is the worker's next task when the result was sent with
	// ?next=1 and one was waiting: the pickup of a poll, without the poll.
	// An extension of RXON; other workers do not ask for it.
	NextTask *TaskPayload `json:"next_task,omitempty"`
}

// QueryNext asks, on a result, for the next task in the answer
// (ResultResponse.NextTask).
const QueryNext = "next"

// WorkerEvent is the body of POST /_worker/events and of WebSocket frames from
// a worker.
type WorkerEvent struct {
	EventID        string            `json:"event_id"`
	WorkerID       string            `json:"worker_id"`
	OriginWorkerID string            `json:"origin_worker_id"`
	EventType      string            `json:"event_type"`
	Payload        map[string]any    `json:"payload"`
	OriginTaskID   string            `json:"origin_task_id,omitempty"`
	BubblingChain  []string          `json:"bubbling_chain"`
	TargetJobID    string            `json:"target_job_id,omitempty"`
	TargetTaskID   string            `json:"target_task_id,omitempty"`
	TraceContext   map[string]string `json:"trace_context,omitempty"`
	Priority       float64           `json:"priority"`
	Timestamp      int64             `json:"timestamp"`
	Security       *Security         `json:"security,omitempty"`
	Metadata       map[string]any    `json:"metadata,omitempty"`
}

// EventProgress is the event type of progress reports. Its payload is
// {"progress": 0..1, "message": "..."}.
const EventProgress = "progress"

// Command is sent by the orchestrator to a worker over the WebSocket.
type Command struct {
	Command  string         `json:"command"`
	TaskID   string         `json:"task_id,omitempty"`
	JobID    string         `json:"job_id,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// CommandCancelTask asks a worker to cancel a running task.
const CommandCancelTask = "cancel_task"

// TokenResponse carries short-lived worker credentials.
type TokenResponse struct {
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	ExpiresIn    int            `json:"expires_in"`
	WorkerID     string         `json:"worker_id"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// RegisterResponse answers a registration.
type RegisterResponse struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	Warning string `json:"warning,omitempty"`
}

// ErrorBody is the JSON body of every 4xx and 5xx response.
type ErrorBody struct {
	Error string `json:"error"`
}
