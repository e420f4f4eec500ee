package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// ErrNotRetryable: the job cannot be retried (it has not failed, or
// nothing of its blueprint is left to run again). The message says why.
var ErrNotRetryable = errors.New("job cannot be retried")

// Retryable reports whether a job's status allows a retry: it ended
// failed or quarantined.
func Retryable(status protocol.JobStatus) bool {
	return status == protocol.StatusFailed || status == protocol.StatusQuarantined
}

// RetryJob runs a job that ended failed or quarantined again from the
// state it failed in: the state whose handler or task failed, or, for a job
// that a failure route took to a failure end state, the state whose task
// failed (Job.FailedState). The job becomes running in that state with a
// fresh count of handler attempts and no error; an executor runs the
// state's handler as on any entry, so its tasks start again at attempt 1.
// by says who asked; it goes into the job_retried event with the state the
// job left and its error.
//
// A job that is not failed or quarantined, whose blueprint or state no
// longer exists, that ended in an end state its blueprint chose with no
// failed task to go back to, or that is the child of another job (whose
// parent has moved on: retry the parent) is refused with ErrNotRetryable
// (ErrJobTerminal does not apply: the job has ended on purpose).
func (e *Engine) RetryJob(ctx context.Context, id, by string) (*store.Job, error) {
	j, err := e.mutate(ctx, id, func(t *txn, j *store.Job) error {
		if !Retryable(j.Status) {
			return fmt.Errorf("%w: job %s is %s; only failed and quarantined jobs are retried", ErrNotRetryable, id, j.Status)
		}
		if j.ParentJobID != "" {
			return fmt.Errorf("%w: job %s is a child job of %s, which has already resumed without it: retry the parent job instead",
				ErrNotRetryable, id, j.ParentJobID)
		}
		bp, ok := e.Blueprint(j.Blueprint)
		if !ok {
			return fmt.Errorf("%w: job %s: blueprint %q is no longer registered", ErrNotRetryable, id, j.Blueprint)
		}
		target := j.CurrentState
		if status, end := bp.IsEnd(target); end && status == j.Status {
			// The blueprint took the job to this end: go back to the
			// state whose failed task sent it there, if any did.
			if j.FailedState == "" {
				return fmt.Errorf("%w: job %s ended in its blueprint's end state %q, reached without a failed task: nothing to retry",
					ErrNotRetryable, id, target)
			}
			target = j.FailedState
		}
		if !slices.Contains(bp.States(), target) {
			return fmt.Errorf("%w: job %s: blueprint %q no longer has state %q", ErrNotRetryable, id, j.Blueprint, target)
		}
		from, prev, msg := j.Status, j.CurrentState, j.ErrorMessage
		e.revive(t, j, target)
		t.emit(Event{Type: EventJobRetried, State: target, PrevState: prev,
			Detail: map[string]any{"by": by, "from_status": string(from), "from_state": prev, "error": msg}})
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	return j, err
}

// revive makes an ended job running in state target and queues the step
// that runs its handler. What finish armed for the end goes: the
// clean-up of its blob objects (the job uses them again) and the end's
// webhook attempts (the job will end again, and notify then). The store
// lifts the retention of a job written live again.
func (e *Engine) revive(t *txn, j *store.Job, target string) {
	if j.WebhookURL != "" {
		for seq := 1; seq <= max(e.cfg.WebhookAttempts, 1); seq++ {
			t.fx.Cancel = append(t.fx.Cancel, endNotice(j, seq, time.Time{}).Key())
		}
	}
	j.CurrentState = target
	j.Status = protocol.StatusRunning
	j.RetryCount, j.TransitionCount = 0, 0 // a fresh budget: a person chose to run it again
	j.ErrorMessage, j.ProgressMessage = "", ""
	j.Result, j.FinishedAt = nil, nil
	j.FailedState = ""
	j.Tasks, j.Routes, j.Approval, j.Aggregator, j.ChildJobID = nil, nil, nil, "", ""
	j.BranchesLeft, j.BranchesDone = 0, 0
	t.fx.Cancel = append(t.fx.Cancel, store.Timer{JobID: j.ID, Kind: store.TimerBlobs}.Key())
	t.fx.Ready = append(t.fx.Ready, j.ID)
}
