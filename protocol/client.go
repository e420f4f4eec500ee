package protocol

import "time"

// Client API paths (relative to the server root). Job creation routes are
// /api/{version}{blueprint endpoint}.
const (
	ClientPrefix          = "/api"
	PublicStatus          = "/_public/status"
	PublicReady           = "/_public/ready"
	PublicDocs            = "/_public/docs"
	PublicOpenAPI         = "/_public/openapi.json"
	PublicMetrics         = "/_public/metrics"
	PublicApprovalPattern = "/_public/webhooks/approval/{job_id}"
	PublicQuarantined     = "/_public/jobs/quarantined"
	HeaderAdminToken      = "X-Admin-Token"
)

// CreateJobRequest is the body of POST /api/{version}{endpoint}.
type CreateJobRequest struct {
	InitialData map[string]any `json:"initial_data,omitempty"`
	WebhookURL  string         `json:"webhook_url,omitempty"`
	// Policy goes with every task of the job (and of its child jobs), at
	// most MaxPolicyBytes of JSON. Its allowed_skills, a non-empty list
	// of task types, bounds what the job may dispatch: another type fails
	// the job, and RXON 1.0b17 workers refuse it too.
	Policy map[string]any `json:"policy,omitempty"`
}

// MaxPolicyBytes bounds a job's policy, as upstream's MAX_POLICY_SIZE_BYTES.
const MaxPolicyBytes = 4096

// CreateJobResponse answers a job creation with 202 Accepted.
type CreateJobResponse struct {
	Status string `json:"status"` // "accepted"
	JobID  string `json:"job_id"`
}

// RetryResponse answers a retry of a failed or quarantined job: the job
// runs again from State.
type RetryResponse struct {
	Status string `json:"status"` // "retry_accepted"
	JobID  string `json:"job_id"`
	State  string `json:"state"`
}

// Job is a job as the client API shows it.
type Job struct {
	ID              string         `json:"id"`
	Blueprint       string         `json:"blueprint_name,omitempty"`
	Status          JobStatus      `json:"status,omitempty"`
	CurrentState    string         `json:"current_state,omitempty"`
	Progress        float64        `json:"progress"`
	ProgressMessage string         `json:"progress_message,omitempty"`
	ErrorMessage    string         `json:"error_message,omitempty"`
	InitialData     map[string]any `json:"initial_data,omitempty"`
	StateHistory    map[string]any `json:"state_history,omitempty"`
	Policy          map[string]any `json:"policy,omitempty"`
	// Costs sums, by name, the costs the workers reported with the
	// results of the job's tasks, every attempt included (each result's
	// own costs are in the job's history, task_result events).
	Costs       map[string]float64 `json:"costs,omitempty"`
	Result      any                `json:"result,omitempty"`
	ParentJobID string             `json:"parent_job_id,omitempty"`
	ChildJobID  string             `json:"child_job_id,omitempty"`
	Client      string             `json:"client,omitempty"`
	WebhookURL  string             `json:"webhook_url,omitempty"`
	Approval    *ApprovalInfo      `json:"approval,omitempty"`
	// Tasks and Dispatches are [] in a job's own view when it has none,
	// and absent from job lists, which do not load them.
	Tasks      []TaskInfo     `json:"tasks,omitzero"`
	Dispatches []DispatchInfo `json:"dispatches,omitzero"`
	CreatedAt  *time.Time     `json:"created_at,omitempty"`
	UpdatedAt  *time.Time     `json:"updated_at,omitempty"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
}

// ApprovalInfo is the pending human decision of a job in waiting_for_human.
type ApprovalInfo struct {
	Message   string   `json:"message"`
	Decisions []string `json:"decisions"`
	// URL approves without the client token: POST {"decision": ...} to it,
	// once, before ExpiresAt. Only in the owner's GET of the job.
	URL       string     `json:"url,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// TaskInfo is an outstanding task of a job, with the dispatch decision that
// placed it.
type TaskInfo struct {
	ID         string  `json:"id"`
	Type       string  `json:"type"`
	State      string  `json:"state"` // queued, running, retry_wait
	Attempt    int     `json:"attempt"`
	WorkerID   string  `json:"worker_id,omitempty"`
	Strategy   string  `json:"strategy,omitempty"`
	Candidates int     `json:"candidates"`
	Reason     string  `json:"reason,omitempty"`
	Priority   float64 `json:"priority"`
}

// DispatchInfo explains one placement of a task: the chosen worker (none
// when no worker was eligible), the strategy, how many workers were
// eligible, and why.
type DispatchInfo struct {
	TaskID     string    `json:"task_id"`
	Type       string    `json:"type"`
	Attempt    int       `json:"attempt"`
	WorkerID   string    `json:"worker_id,omitempty"`
	Strategy   string    `json:"strategy"`
	Candidates int       `json:"candidates"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// JobList is a page of GET /api/v1/jobs.
type JobList struct {
	Jobs       []Job  `json:"jobs"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ApprovalRequest is the body of POST /api/v1/jobs/{id}/approve and of the
// upstream-compatible POST /_public/webhooks/approval/{id}.
type ApprovalRequest struct {
	Decision string `json:"decision"`
	// Token is a pending approval's single-use token (also accepted as
	// the query parameter token): with it, POST /_public/webhooks/approval/{id}
	// needs no client token.
	Token string `json:"token,omitempty"`
}

// WorkerInfo is a worker as GET /api/v1/workers shows it: no tokens.
type WorkerInfo struct {
	WorkerID           string              `json:"worker_id"`
	WorkerType         string              `json:"worker_type,omitempty"`
	Status             string              `json:"status"`
	Skills             []SkillInfo         `json:"supported_skills,omitempty"`
	HotSkills          []string            `json:"hot_skills,omitempty"`
	CostPerSkill       map[string]float64  `json:"cost_per_skill,omitempty"`
	Resources          *Resources          `json:"resources,omitempty"`
	InstalledSoftware  map[string]string   `json:"installed_software,omitempty"`
	InstalledArtifacts []InstalledArtifact `json:"installed_artifacts,omitempty"`
	Hostname           string              `json:"hostname,omitempty"`
	Reputation         float64             `json:"reputation"`
	Load               int                 `json:"load"`
	MaxConcurrent      int                 `json:"max_concurrent_tasks,omitempty"`
	CurrentTasks       []string            `json:"current_tasks,omitempty"`
	Usage              *Usage              `json:"usage,omitempty"`
	RegisteredAt       time.Time           `json:"registered_at"`
	LastSeen           time.Time           `json:"last_seen"`
}

// BlueprintInfo describes a registered blueprint.
type BlueprintInfo struct {
	Name       string   `json:"name"`
	APIVersion string   `json:"api_version,omitempty"`
	Endpoint   string   `json:"endpoint,omitempty"` // full path, e.g. /api/v1/jobs/full_showcase
	StartState string   `json:"start_state"`
	States     []string `json:"states"`
	EndStates  []string `json:"end_states"`
}

// ScheduleInfo describes a schedule of schedules.toml (admin API).
type ScheduleInfo struct {
	Name      string       `json:"name"`
	Blueprint string       `json:"blueprint"`
	Schedule  string       `json:"schedule"` // "every 60s" or a cron spec
	Timezone  string       `json:"timezone"`
	NextRun   time.Time    `json:"next_run"`
	LastRun   *ScheduleRun `json:"last_run,omitempty"`
	// RecentRuns are the latest runs, newest first (a few).
	RecentRuns []ScheduleRun  `json:"recent_runs,omitempty"`
	Data       map[string]any `json:"initial_data,omitempty"`
}

// ScheduleRun is a run of a schedule.
type ScheduleRun struct {
	Tick  time.Time `json:"tick"`
	At    time.Time `json:"at"`
	JobID string    `json:"job_id,omitempty"`
	Error string    `json:"error,omitempty"`
}

// Dashboard is GET /api/v1/dashboard: a summary for the calling client.
// Its workers and jobs objects have upstream's keys (workers.total,
// jobs.queued and one count per job status).
type Dashboard struct {
	Workers DashboardWorkers `json:"workers"`
	// Jobs counts the caller's jobs in the live store by status (the
	// unfinished ones, and those that ended within the store's retention),
	// and "queued": the tasks of every client waiting in queues.
	Jobs map[string]int `json:"jobs"`
	// Queues are the tasks waiting in queues: Pending by task type (no
	// worker chosen yet), Assigned the number queued for a chosen worker.
	Queues DashboardQueues `json:"queues"`
	// JobsTruncated says the caller has more jobs in the live store than
	// the dashboard counts (DashboardMaxJobs): the counts are of the newest.
	JobsTruncated bool `json:"jobs_truncated,omitempty"`
}

// DashboardMaxJobs bounds the jobs a dashboard counts.
const DashboardMaxJobs = 10000

// DashboardWorkers counts the live workers, in all and by status.
type DashboardWorkers struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
}

// DashboardQueues counts the queued tasks.
type DashboardQueues struct {
	Pending  map[string]int `json:"pending"`
	Assigned int            `json:"assigned"`
}

// WorkerCatalog is GET /api/v1/workers/catalog: the skills the live
// workers offer, by skill name.
type WorkerCatalog map[string]CatalogEntry

// CatalogEntry is one skill of the WorkerCatalog.
type CatalogEntry struct {
	// Contract is the skill as the first worker offering it registered it,
	// with that worker's price for it.
	Contract          CatalogContract `json:"contract"`
	ProvidersCount    int             `json:"providers_count"`
	WorkerTypes       []string        `json:"worker_types"`
	AverageReputation float64         `json:"average_reputation"`
}

// CatalogContract is a skill's contract in the catalog.
type CatalogContract struct {
	SkillInfo
	BasePrice *float64 `json:"base_price,omitempty"`
}
