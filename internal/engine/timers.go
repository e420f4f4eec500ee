package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

const timerBatch = 256

// timerLoop fires due timers and notices workers that went offline, until
// Stop. Timers are claimed atomically, so several engines on one store fire
// each timer once; a timer whose engine dies fires again after the claim's
// visibility window.
func (e *Engine) timerLoop() {
	ctx := e.ctx
	reapEvery := max(e.cfg.WorkerTTL/4, 200*time.Millisecond)
	var lastReap time.Time
	lastRecovery := e.now() // recovery is earned by time passing, not by starting
	for {
		e.sleepUntil.Store(0) // awake: every new timer pokes
		now := e.now()
		due, err := e.store.DueTimers(ctx, now, timerBatch, e.cfg.StepLease)
		if err != nil && ctx.Err() == nil {
			e.log.Error("read due timers", "error", err)
		}
		var fired []string
		for _, tm := range due {
			if err := e.fire(ctx, tm); err != nil {
				if errors.Is(err, errOwned) {
					continue
				}
				if ctx.Err() == nil {
					e.log.Error("timer failed; it fires again later", "job_id", tm.JobID, "kind", tm.Kind, "error", err)
				}
				continue
			}
			fired = append(fired, tm.Key())
		}
		if len(fired) > 0 {
			if err := e.store.DeleteTimers(ctx, fired...); err != nil && ctx.Err() == nil {
				e.log.Error("delete fired timers", "error", err)
			}
		}
		if now.Sub(lastReap) >= reapEvery {
			lastReap = now
			e.reapWorkers(ctx)
		}
		if now.Sub(lastRecovery) >= e.cfg.Reputation.RecoveryInterval {
			lastRecovery = now
			e.recoverReputations(ctx)
		}
		if len(due) == timerBatch {
			continue
		}
		wait := e.cfg.TimerInterval
		if next, ok, err := e.store.NextTimer(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(e.now()), time.Millisecond))
		}
		wait = min(wait, reapEvery)
		// A poke that came while awake is still in the channel.
		e.sleepUntil.Store(e.now().Add(wait).UnixNano())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.poke:
		case <-t.C:
		}
		t.Stop()
	}
}

// fire carries out one timer. A timer whose task or step has moved on is
// stale and does nothing.
func (e *Engine) fire(ctx context.Context, tm store.Timer) error {
	var err error
	switch tm.Kind {
	case store.TimerStep:
		var j *store.Job
		j, err = e.store.LoadJob(ctx, tm.JobID)
		if err == nil && j.Status == protocol.StatusRunning && j.CurrentState == tm.Ref && j.RetryCount == tm.Seq {
			err = e.store.PushReady(ctx, j.ID)
		}
	case store.TimerRetry:
		_, err = e.onTask(ctx, tm, store.TaskRetryWait, func(t *txn, j *store.Job, run *store.TaskRun) error {
			return e.place(ctx, t, j, run)
		})
	case store.TimerDispatch:
		_, err = e.onTask(ctx, tm, store.TaskQueued, func(t *txn, j *store.Job, run *store.TaskRun) error {
			bp, err := e.blueprintOf(j)
			if err != nil {
				return err
			}
			t.emit(Event{Type: EventTaskTimeout, TaskID: run.ID, State: j.CurrentState, Detail: map[string]any{"kind": "dispatch", "type": run.Spec.Type}})
			wait := t.now.Sub(run.QueuedAt).Round(time.Millisecond)
			e.taskFailed(t, j, bp, run, "", protocol.TaskError{Code: protocol.ErrTimeout,
				Message: fmt.Sprintf("no worker picked the task up within %s (dispatch timeout): %s", wait, decisionReason(run))},
				false, protocol.StatusFailed)
			return nil
		})
	case store.TimerExecution:
		var worker, client string
		_, err = e.mutateTask(ctx, tm.JobID, tm.Ref, func(t *txn, j *store.Job) error {
			worker, client = "", "" // of an attempt that was not committed
			run := timedTask(j, tm, store.TaskRunning)
			if run == nil {
				return errSkip
			}
			bp, err := e.blueprintOf(j)
			if err != nil {
				return err
			}
			worker, client = run.WorkerID, j.Client.Name
			t.emit(Event{Type: EventTaskTimeout, TaskID: run.ID, WorkerID: worker, State: j.CurrentState, Detail: map[string]any{"kind": "execution", "type": run.Spec.Type}})
			e.taskFailed(t, j, bp, run, worker, protocol.TaskError{Code: protocol.ErrTimeout,
				Message: fmt.Sprintf("worker %s sent no result in time (execution timeout)", worker)}, true, protocol.StatusQuarantined)
			return nil
		})
		if err == nil && worker != "" {
			e.adjustReputation(ctx, worker, client, -e.cfg.Reputation.FailurePenalty)
		}
	case store.TimerResult:
		_, err = e.onTask(ctx, tm, "", func(t *txn, j *store.Job, run *store.TaskRun) error {
			bp, err := e.blueprintOf(j)
			if err != nil {
				return err
			}
			t.emit(Event{Type: EventTaskTimeout, TaskID: run.ID, WorkerID: run.WorkerID, State: j.CurrentState, Detail: map[string]any{"kind": "result", "type": run.Spec.Type}})
			e.taskFailed(t, j, bp, run, "", protocol.TaskError{Code: protocol.ErrTimeout,
				Message: fmt.Sprintf("no result within the task's result timeout of %s", run.Spec.ResultTimeout)}, false, protocol.StatusFailed)
			return nil
		})
	case store.TimerWebhook:
		err = e.fireWebhook(ctx, tm)
	case store.TimerBlobs:
		err = e.cleanBlobs(ctx, tm)
	default:
		e.log.Warn("unknown timer kind", "kind", tm.Kind, "job_id", tm.JobID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil // the job expired: nothing left to time out
	}
	return err
}

// onTask runs fn on the task a timer refers to if it is still in the state
// (and attempt) the timer was armed for. fn may run more than once (a
// retried or a batched write): what it hands out it sets afresh each time.
func (e *Engine) onTask(ctx context.Context, tm store.Timer, want store.TaskState, fn func(t *txn, j *store.Job, run *store.TaskRun) error) (*store.Job, error) {
	return e.mutateTask(ctx, tm.JobID, tm.Ref, func(t *txn, j *store.Job) error {
		run := timedTask(j, tm, want)
		if run == nil {
			return errSkip
		}
		return fn(t, j, run)
	})
}

// timedTask returns the task a timer refers to if it is still in the state
// (and attempt) the timer was armed for.
func timedTask(j *store.Job, tm store.Timer, want store.TaskState) *store.TaskRun {
	run := j.Tasks[tm.Ref]
	if j.Status.Terminal() || run == nil || (want != "" && (run.State != want || run.Attempt != tm.Seq)) {
		return nil
	}
	return run
}

func decisionReason(run *store.TaskRun) string {
	if run.Decision == nil {
		return "no decision recorded"
	}
	if run.Decision.WorkerID != "" {
		return "it was queued for worker " + run.Decision.WorkerID
	}
	return run.Decision.Reason
}

// reapWorkers handles workers whose heartbeats stopped: the tasks they were
// running are retried elsewhere (counted as a failed attempt), and tasks
// queued for them are placed again.
func (e *Engine) reapWorkers(ctx context.Context) {
	ids, err := e.store.ExpiredWorkers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("find offline workers", "error", err)
		}
		return
	}
	for _, id := range ids {
		e.pollers.forget(id)
		e.placed.forget(id)
		e.roster.invalidate()
		e.log.Warn("worker went offline: its tasks move to other workers", "worker_id", id)
		e.publish(ctx, Event{Type: EventWorkerOffline, Time: e.now(), WorkerID: id})
		e.requeueWorker(ctx, id, true)
	}
}

// requeueWorker moves a worker's tasks elsewhere. Running tasks count as a
// failed attempt when failed is set.
func (e *Engine) requeueWorker(ctx context.Context, workerID string, failed bool) {
	running, err := e.store.RunningTasks(ctx, workerID)
	if err != nil {
		e.log.Error("list running tasks", "worker_id", workerID, "error", err)
	}
	for _, qt := range running {
		e.loseTask(ctx, workerID, qt, failed, 0, fmt.Sprintf("worker %s went offline while running the task", workerID))
	}
	e.requeueQueued(ctx, workerID)
}

// loseTask retries a task that its worker no longer runs (the worker went
// offline, restarted, or stopped listing it) as a failed attempt, when the
// task is still recorded as running on that worker and was picked up at
// least minAge ago. failed costs the worker FailurePenalty.
func (e *Engine) loseTask(ctx context.Context, workerID string, qt store.QueuedTask, failed bool, minAge time.Duration, msg string) {
	tm := store.Timer{JobID: qt.JobID, Ref: qt.Run.ID, Seq: qt.Run.Attempt}
	var client string
	lost := false
	_, err := e.mutateTask(ctx, tm.JobID, tm.Ref, func(t *txn, j *store.Job) error {
		client, lost = "", false // of an attempt that was not committed
		run := timedTask(j, tm, store.TaskRunning)
		if run == nil || run.WorkerID != workerID || (minAge > 0 && (run.PickedUpAt == nil || t.now.Sub(*run.PickedUpAt) < minAge)) {
			return errSkip
		}
		bp, err := e.blueprintOf(j)
		if err != nil {
			return err
		}
		client, lost = j.Client.Name, true
		e.taskFailed(t, j, bp, run, workerID, protocol.TaskError{Code: protocol.ErrTimeout, Message: msg}, true, protocol.StatusQuarantined)
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.log.Error("retry a lost task", "worker_id", workerID, "task_id", qt.Run.ID, "error", err)
		return
	}
	if minAge > 0 && !lost {
		return // too young to judge, or no longer this worker's
	}
	_ = e.store.ReleaseTask(ctx, workerID, qt.Run.ID)
	if failed && lost {
		e.adjustReputation(ctx, workerID, client, -e.cfg.Reputation.FailurePenalty)
	}
}

// recoverReputations gives every live worker below full reputation its
// share of RecoveryPerHour for one RecoveryInterval. A lock held for the
// interval (and not released) makes one orchestrator apply it per interval.
func (e *Engine) recoverReputations(ctx context.Context) {
	interval := e.cfg.Reputation.RecoveryInterval
	_, won, err := e.store.AcquireLock(ctx, "reputation-recovery", interval)
	if err != nil || !won {
		return
	}
	cands, err := e.candidates(ctx)
	if err != nil {
		return
	}
	delta := e.cfg.Reputation.RecoveryPerHour * interval.Hours()
	for _, c := range cands {
		if c.Reputation < 1 {
			e.adjustReputation(ctx, c.Worker.ID, "", delta)
		}
	}
}
