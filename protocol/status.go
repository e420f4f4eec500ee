package protocol

// JobStatus is the status of a job as clients see it.
type JobStatus string

// Job statuses. Finished, Failed, Cancelled, Error and Quarantined are terminal.
const (
	StatusPending          JobStatus = "pending"
	StatusRunning          JobStatus = "running"
	StatusWaitingForWorker JobStatus = "waiting_for_worker"
	StatusWaitingForHuman  JobStatus = "waiting_for_human"
	StatusWaitingParallel  JobStatus = "waiting_for_parallel_tasks"
	StatusWaitingForSubJob JobStatus = "waiting_for_sub_job"
	StatusFinished         JobStatus = "finished"
	StatusFailed           JobStatus = "failed"
	StatusCancelled        JobStatus = "cancelled"
	StatusError            JobStatus = "error"
	StatusQuarantined      JobStatus = "quarantined"
)

// Terminal reports whether no further transition can happen.
func (s JobStatus) Terminal() bool {
	switch s {
	case StatusFinished, StatusFailed, StatusCancelled, StatusError, StatusQuarantined:
		return true
	}
	return false
}

// Worker statuses reported in heartbeats. Only idle workers receive tasks.
const (
	WorkerIdle     = "idle"
	WorkerBusy     = "busy"
	WorkerFull     = "full"
	WorkerDraining = "draining"
	WorkerOffline  = "offline"
)

// Task result statuses. Any other string is a custom status routed by the
// blueprint's transitions.
const (
	TaskSuccess   = "success"
	TaskFailure   = "failure"
	TaskCancelled = "cancelled"
)

// Reasons an orchestrator ignores a task result.
const (
	IgnoredJobNotFound      = "job_not_found"
	IgnoredWorkerMismatch   = "worker_mismatch"
	IgnoredStaleTask        = "stale_task"
	IgnoredDeadlineExceeded = "deadline_exceeded"
	IgnoredJobCancelled     = "job_cancelled"
	IgnoredJobTerminated    = "job_already_terminated"
	IgnoredDuplicateResult  = "duplicate_result"
	ResultAccepted          = "accepted"
	ResultIgnored           = "ignored"
)
