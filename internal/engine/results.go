package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Transitions reported back to the worker for an accepted result.
const (
	transSuccess   = "success_transition"
	transFailure   = "failure_handled"
	transRetry     = "retry_scheduled"
	transBranch    = "parallel_branch_accepted"
	transUnhandled = "unhandled_status_failure"
	transEnded     = "job_ended"
	transCancelled = "cancelled_handled"
)

// SubmitResult applies a worker's result to its task, exactly once: a
// result for a task that already ended, that belongs to another worker, or
// whose job has ended is ignored with a reason.
func (e *Engine) SubmitResult(ctx context.Context, workerID string, res protocol.TaskResult) (protocol.ResultResponse, error) {
	return e.SubmitResultOnce(ctx, workerID, res, nil)
}

// SubmitResultOnce is SubmitResult that also sets once, a value key (the
// API's replay protection): in the result's commit when it is applied, so
// that it costs no command of its own, alone when the result is ignored.
// If once is taken already, nothing is applied or announced and the error
// is store.ErrOnceTaken.
func (e *Engine) SubmitResultOnce(ctx context.Context, workerID string, res protocol.TaskResult, once *store.Once) (protocol.ResultResponse, error) {
	if res.WorkerID != "" && res.WorkerID != workerID {
		return protocol.ResultResponse{}, fmt.Errorf("%w: authenticated worker %q cannot submit results for worker %q", ErrWorkerIDMismatch, workerID, res.WorkerID)
	}
	status := res.Status
	if status == "" {
		status = protocol.TaskSuccess
	}
	e.offloadResult(ctx, workerID, &res, status)
	var resp protocol.ResultResponse
	var delta float64
	var client string   // whose job it is: penalties count against its cap
	var blamed []string // workers whose transient failure this success proves theirs
	var reward *store.Reward
	_, err := e.mutateTask(ctx, res.JobID, res.TaskID, func(t *txn, j *store.Job) error {
		delta, client, blamed, reward = 0, j.Client.Name, nil, nil
		if reason, msg := ignoreReason(j, res.TaskID, workerID); reason != "" {
			resp = protocol.ResultResponse{Status: protocol.ResultIgnored, Reason: reason, Message: msg}
			return errSkip
		}
		bp, err := e.blueprintOf(j)
		if err != nil {
			return err
		}
		if once != nil {
			t.fx.Onces = append(t.fx.Onces, *once)
		}
		run := j.Tasks[res.TaskID]
		result := store.Result{
			TaskID: run.ID, Type: run.Spec.Type, WorkerID: workerID, Status: status,
			Data: store.CloneMap(res.Data), Error: res.Error,
		}
		detail := map[string]any{"type": run.Spec.Type, "status": status, "attempt": run.Attempt, "error": res.Error}
		if run.PickedUpAt != nil {
			detail["ran_for"] = t.now.Sub(*run.PickedUpAt).Seconds()
		}
		if costs := addCosts(j, res.Costs); costs != nil {
			detail["costs"] = costs
		}
		t.emit(Event{Type: EventTaskResult, TaskID: run.ID, WorkerID: workerID, State: j.CurrentState, Detail: detail})
		resp = protocol.ResultResponse{Status: protocol.ResultAccepted}
		switch {
		case status == protocol.TaskFailure:
			terr := protocol.TaskError{Code: protocol.ErrTransient, Message: "the worker reported a failure without details"}
			if res.Error != nil {
				terr = *res.Error
				if terr.Code == "" {
					terr.Code = protocol.ErrTransient
				}
			}
			if protocol.Classify(terr.Code) == protocol.ClassTransient {
				// Charged only if another worker then completes the task.
				if !slices.Contains(run.Blame, workerID) {
					run.Blame = append(run.Blame, workerID)
				}
			} else {
				delta = -e.penalty(terr.Code)
			}
			resp.Transition = e.taskFailed(t, j, bp, run, workerID, terr, true, protocol.StatusQuarantined)
		case status == protocol.TaskCancelled && j.Routes[status] == "" && !run.Branch:
			// The worker gave the task up (it is shutting down, say): run
			// it elsewhere, without blaming the worker.
			resp.Transition = e.taskFailed(t, j, bp, run, workerID,
				protocol.TaskError{Code: protocol.ErrTransient, Message: "the worker cancelled the task"}, true, protocol.StatusQuarantined)
		default:
			delta = e.cfg.Reputation.Reward
			if delta > 0 {
				// No cap on rewards: it goes with the result's write.
				reward = &store.Reward{Worker: workerID, Delta: delta, Initial: 1, Floor: 0, Ceiling: 1}
				t.fx.Rewards = append(t.fx.Rewards, reward)
			}
			blamed = slices.DeleteFunc(slices.Clone(run.Blame), func(w string) bool { return w == workerID })
			mergeDataMetadata(j, res.DataMetadata)
			resp.Transition = e.taskSucceeded(t, j, bp, run, result)
		}
		if next := e.stepsAfter(ctx, t, j, bp); next != nil {
			*j = *next
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		resp, err = protocol.ResultResponse{Status: protocol.ResultIgnored, Reason: protocol.IgnoredJobNotFound, Message: "no such job"}, nil
	}
	if err != nil {
		return resp, err
	}
	if resp.Status == protocol.ResultIgnored {
		if once != nil {
			// Nothing was written: a replayed message is refused before
			// it counts as a late result.
			first, err := e.store.SetOnce(ctx, once.Key, once.TTL)
			if err != nil {
				return protocol.ResultResponse{}, fmt.Errorf("record result of task %s: %w", res.TaskID, err)
			}
			if !first {
				return protocol.ResultResponse{}, fmt.Errorf("%s: %w", once.Key, store.ErrOnceTaken)
			}
		}
		e.publish(ctx, Event{Type: EventLateResult, Time: e.now(), JobID: res.JobID, TaskID: res.TaskID, WorkerID: workerID,
			Detail: map[string]any{"reason": resp.Reason, "status": status}})
		return resp, nil
	}
	switch {
	case reward != nil && reward.Applied:
		// A reward that finds the worker at the ceiling changes nothing:
		// no event, and no outbox entry for it.
		if reward.Value != reward.Before {
			e.reputationChanged(ctx, workerID, reward.Value, delta)
		}
	case delta != 0: // a penalty, or a reward the store left to us
		e.adjustReputation(ctx, workerID, client, delta)
	}
	for _, w := range blamed {
		// Proven by this success, so not counted against the client's cap.
		e.adjustReputation(ctx, w, "", -e.cfg.Reputation.FailurePenalty)
	}
	return resp, nil
}

// ignoreReason says why a result cannot be applied, or "" if it can.
func ignoreReason(j *store.Job, taskID, workerID string) (reason, msg string) {
	if j.Status.Terminal() {
		switch {
		case j.Status == protocol.StatusCancelled:
			return protocol.IgnoredJobCancelled, "the job was cancelled"
		case j.DoneTasks[taskID] == "timeout":
			return protocol.IgnoredDeadlineExceeded, "the task timed out"
		}
		return protocol.IgnoredJobTerminated, fmt.Sprintf("the job has already ended (%s)", j.Status)
	}
	run := j.Tasks[taskID]
	if run == nil {
		if st, done := j.DoneTasks[taskID]; done {
			if st == "timeout" {
				return protocol.IgnoredDeadlineExceeded, "the task timed out"
			}
			return protocol.IgnoredDuplicateResult, "a result for this task was already applied"
		}
		return protocol.IgnoredStaleTask, "the task is not outstanding for this job"
	}
	if run.State != store.TaskRunning || run.WorkerID != workerID {
		return protocol.IgnoredWorkerMismatch, "the task is not assigned to this worker"
	}
	return "", ""
}

func (e *Engine) penalty(code string) float64 {
	if code == protocol.ErrInvalidInput {
		return 0 // the input's fault, not the worker's
	}
	switch protocol.Classify(code) {
	case protocol.ClassQuarantine:
		return e.cfg.Reputation.SeverePenalty
	case protocol.ClassPermanent:
		return e.cfg.Reputation.PermanentPenalty
	}
	return e.cfg.Reputation.FailurePenalty
}

// adjustReputation moves a worker's reputation by delta. A penalty earned on
// a job of client is cut to what is left of the client's hourly cap on
// this worker.
func (e *Engine) adjustReputation(ctx context.Context, workerID, client string, delta float64) {
	if delta < 0 && client != "" {
		delta = -e.capPenalty(ctx, workerID, client, -delta)
		if delta == 0 {
			return
		}
	}
	rep, err := e.store.AdjustReputation(ctx, workerID, delta, 1, 0, 1)
	if err != nil {
		e.log.Warn("adjust reputation", "worker_id", workerID, "error", err)
		return
	}
	e.reputationChanged(ctx, workerID, rep, delta)
}

// reputationChanged publishes a worker's reputation after a change by delta.
func (e *Engine) reputationChanged(ctx context.Context, workerID string, rep, delta float64) {
	e.publish(ctx, Event{Type: EventReputation, Time: e.now(), WorkerID: workerID, Detail: map[string]any{"reputation": rep, "delta": delta}})
}

// capPenalty returns the part of penalty that the client's hourly budget
// on the worker still allows, and spends it. The budget is a counter in
// thousandths, shared by every orchestrator of the deployment.
func (e *Engine) capPenalty(ctx context.Context, workerID, client string, penalty float64) float64 {
	limit := e.cfg.Reputation.ClientPenaltyCap
	if limit <= 0 {
		return penalty
	}
	hour := e.now().Truncate(time.Hour)
	key := fmt.Sprintf("reppen:%s:%s:%d", workerID, client, hour.Unix())
	spend := int64(math.Round(penalty * 1000))
	total, err := e.store.Incr(ctx, key, spend, hour.Add(2*time.Hour))
	if err != nil {
		e.log.Warn("reputation penalty budget", "worker_id", workerID, "error", err)
		return penalty
	}
	left := int64(math.Round(limit*1000)) - (total - spend)
	return float64(max(0, min(spend, left))) / 1000
}

// endRun withdraws a task that has ended and records its final status.
func endRun(t *txn, j *store.Job, run *store.TaskRun, status string) {
	t.fx.Remove = append(t.fx.Remove, run.ID)
	t.fx.Cancel = append(t.fx.Cancel, runTimerKeys(j.ID, run, true)...)
	delete(j.Tasks, run.ID)
	if j.DoneTasks == nil {
		j.DoneTasks = map[string]string{}
	}
	j.DoneTasks[run.ID] = status
}

// taskSucceeded applies a success or custom status.
func (e *Engine) taskSucceeded(t *txn, j *store.Job, bp *blueprint.Blueprint, run *store.TaskRun, result store.Result) string {
	endRun(t, j, run, result.Status)
	if run.Branch {
		e.branchEnded(t, j, run, result)
		return transBranch
	}
	target, ok := j.Routes[result.Status]
	if !ok {
		e.finish(t, j, protocol.StatusFailed, fmt.Sprintf("worker returned unhandled status %q for task %s (state %q routes: %s)",
			result.Status, run.Spec.Type, j.CurrentState, routeList(j.Routes)), nil)
		return transUnhandled
	}
	if j.StateHistory == nil {
		j.StateHistory = map[string]any{}
	}
	for k, v := range result.Data {
		j.StateHistory[k] = v
	}
	j.LastResult = &result
	e.transition(t, j, bp, target)
	if result.Status == protocol.TaskCancelled {
		return transCancelled
	}
	return transSuccess
}

// taskFailed handles a failed attempt: severe errors quarantine the job,
// transient ones are retried while attempts remain, and otherwise the task
// has failed for good: a branch records the failure, a single task follows
// its failure route, and without one the job ends with noRoute.
func (e *Engine) taskFailed(t *txn, j *store.Job, bp *blueprint.Blueprint, run *store.TaskRun, workerID string,
	terr protocol.TaskError, retryable bool, noRoute protocol.JobStatus) string {
	class := protocol.Classify(terr.Code)
	if class == protocol.ClassQuarantine {
		endRun(t, j, run, protocol.TaskFailure)
		e.finish(t, j, protocol.StatusQuarantined, fmt.Sprintf("task %s (%s) failed with %s: %s", run.ID, run.Spec.Type, terr.Code, terr.Message), nil)
		return transEnded
	}
	if class == protocol.ClassTransient && retryable && run.Attempt <= e.cfg.MaxRetries {
		e.retry(t, j, run, workerID, terr)
		return transRetry
	}
	status := protocol.TaskFailure
	if terr.Code == protocol.ErrTimeout && workerID == "" {
		status = "timeout"
	}
	endRun(t, j, run, status)
	result := store.Result{TaskID: run.ID, Type: run.Spec.Type, WorkerID: workerID, Status: protocol.TaskFailure, Error: &terr}
	if run.Branch {
		e.branchEnded(t, j, run, result)
		return transBranch
	}
	msg := fmt.Sprintf("task %s (%s) failed with %s: %s", run.ID, run.Spec.Type, terr.Code, terr.Message)
	if run.Attempt > 1 {
		msg = fmt.Sprintf("task %s (%s) failed after %d attempts, last with %s: %s", run.ID, run.Spec.Type, run.Attempt, terr.Code, terr.Message)
	}
	target, ok := j.Routes[protocol.TaskFailure]
	if !ok {
		e.finish(t, j, noRoute, msg+fmt.Sprintf(" (state %q routes no failure)", j.CurrentState), nil)
		return transEnded
	}
	j.LastResult = &result
	from := j.CurrentState
	e.transition(t, j, bp, target)
	j.FailedState = from // where a retry of the job starts again
	j.ErrorMessage = msg // kept for clients; the next state may clear it by finishing
	return transFailure
}

// retry schedules another attempt of a task after a backoff, preferring a
// different worker.
func (e *Engine) retry(t *txn, j *store.Job, run *store.TaskRun, workerID string, terr protocol.TaskError) {
	t.fx.Remove = append(t.fx.Remove, run.ID)
	t.fx.Cancel = append(t.fx.Cancel, runTimerKeys(j.ID, run, false)...) // keep the overall result deadline
	if workerID != "" && !slices.Contains(run.Excluded, workerID) {
		run.Excluded = append(run.Excluded, workerID)
	}
	failed := run.Attempt
	run.Attempt++
	run.State = store.TaskRetryWait
	run.WorkerID = ""
	run.PickedUpAt = nil
	run.LastError = &terr
	delay := e.backoff(failed)
	t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerRetry, Ref: run.ID, Seq: run.Attempt, At: t.now.Add(delay)})
	if !run.Branch {
		j.Status = protocol.StatusWaitingForWorker
		j.ProgressMessage = fmt.Sprintf("retrying task %s in %s (attempt %d of %d) after %s: %s",
			run.Spec.Type, delay.Round(10e6), run.Attempt, e.cfg.MaxRetries+1, terr.Code, terr.Message)
	}
	t.emit(Event{Type: EventTaskRetry, TaskID: run.ID, WorkerID: workerID, State: j.CurrentState,
		Detail: map[string]any{"type": run.Spec.Type, "attempt": run.Attempt, "delay": delay.Seconds(), "code": terr.Code, "message": terr.Message}})
}

// branchEnded records a branch result; when it was the last branch, the job
// moves to the aggregator, which sees every result.
func (e *Engine) branchEnded(t *txn, j *store.Job, run *store.TaskRun, result store.Result) {
	if j.BranchResults == nil {
		j.BranchResults = map[string]store.Result{}
	}
	if j.BranchesLeft+j.BranchesDone == 0 {
		// A fan-out begun by an older version keeps no counters: count
		// once, on a whole read.
		if !t.wantAll(j) {
			return
		}
		j.BranchesLeft, j.BranchesDone = len(j.Tasks)+1, len(j.BranchResults)
	}
	j.BranchResults[run.ID] = result
	// Counters, not the other branches' records: a result reads and
	// writes its own branch only.
	j.BranchesLeft--
	j.BranchesDone++
	j.ProgressMessage = strconv.Itoa(j.BranchesDone) + " of " + strconv.Itoa(j.BranchesDone+j.BranchesLeft) + " parallel tasks done"
	if j.BranchesLeft > 0 {
		return
	}
	prev := j.CurrentState
	j.CurrentState = j.Aggregator
	j.Aggregator = ""
	j.Tasks = nil
	j.Status = protocol.StatusRunning
	j.TransitionCount++
	t.emit(Event{Type: EventStateEntered, State: j.CurrentState, PrevState: prev})
	t.fx.Ready = append(t.fx.Ready, j.ID)
}

func routeList(routes map[string]string) string {
	if len(routes) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(routes)), ", ")
}
