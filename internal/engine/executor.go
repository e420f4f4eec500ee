package engine

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/ctxtime"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// executorLoop takes ready jobs and runs one step each, until Stop.
func (e *Engine) executorLoop() {
	ctx := e.ctx
	backoff := 100 * time.Millisecond
	for {
		id, version, err := e.store.NextReady(ctx, e.cfg.StepLease)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.log.Error("take ready job", "error", err)
			if !ctxtime.Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		e.runStep(ctx, id, version)
	}
}

// runStep runs one step of a job taken at version under a lease it keeps
// renewed. A step that fails on the store keeps its lease, so the job comes
// back when the lease lapses.
func (e *Engine) runStep(ctx context.Context, id string, version int64) {
	stop := e.keepLease(ctx, id)
	released, err := e.step(ctx, id, version)
	stop()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("job step failed; it will be retried when its lease lapses", "job_id", id, "error", err)
		}
		return
	}
	if released {
		return
	}
	if err := e.store.DoneReady(ctx, id); err != nil && ctx.Err() == nil {
		e.log.Warn("release job lease", "job_id", id, "error", err)
	}
}

func (e *Engine) keepLease(ctx context.Context, id string) (stop func()) {
	every := e.cfg.StepLease / 3
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := e.store.ExtendReady(ctx, id, e.cfg.StepLease); err != nil && ctx.Err() == nil {
					e.log.Warn("extend job lease", "job_id", id, "error", err)
				}
			}
		}
	}()
	return func() { close(done) }
}

// step advances one job, taken at version, by one state. released reports
// that the step's write also ended the lease. The copy this process kept
// of the job when it wrote it last stands for a read when it has that
// version: the step after a result or a fan-in written here costs no read.
func (e *Engine) step(ctx context.Context, id string, version int64) (released bool, err error) {
	// The write that made the job ready here may still be keeping its
	// copy: it holds the job's lock until it has.
	lock, err := e.locks.acquire(ctx, id)
	if err != nil {
		return false, err
	}
	j := e.recent.copyAt(id, version)
	lock.release()
	if j == nil {
		j, err = e.store.GetJob(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil // expired or never existed: nothing to do
		}
		if err != nil {
			return false, err
		}
	}
	switch j.Status {
	case protocol.StatusPending, protocol.StatusRunning:
		if len(j.Tasks) > 0 {
			return false, nil // running means a worker runs its task: a stale wake-up
		}
		return e.runHandler(ctx, j)
	case protocol.StatusWaitingForSubJob:
		return false, e.resumeFromChild(ctx, j)
	}
	return false, nil // waiting for a worker or a human, or ended: a stale wake-up
}

// stepKey identifies the step a handler ran for, so that its outcome is
// applied only if the job is still there.
type stepKey struct {
	status      protocol.JobStatus
	state       string
	transitions int
	retries     int
}

func keyOf(j *store.Job) stepKey {
	return stepKey{j.Status, j.CurrentState, j.TransitionCount, j.RetryCount}
}

func (e *Engine) runHandler(ctx context.Context, j *store.Job) (released bool, err error) {
	ctx, span := e.startSpan(withTrace(ctx, j.TraceContext), "step "+j.Blueprint+"/"+j.CurrentState, j)
	defer span.End()
	bp, err := e.blueprintOf(j)
	if err != nil {
		return false, e.failStep(ctx, j, protocol.StatusFailed, err.Error())
	}
	key := keyOf(j)
	snapshot := j.Clone() // what the handler saw, reused for the write below
	out, history, herr := e.runState(ctx, j, bp)
	if ctx.Err() != nil {
		return false, ctx.Err() // stopping: the step is redone by whoever resumes the job
	}
	// Ids are fixed before the write so that a retried write reuses them.
	ids := newStepIDs(j.ID)
	var oerr error
	if herr == nil {
		// Large params go to blob storage before the write, so that the
		// job record only holds references.
		ids.offloaded, oerr = e.offloadParams(ctx, j.ID, &out, ids)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	_, err = e.mutateFrom(ctx, j.ID, snapshot, func(t *txn, j *store.Job) error {
		released = false
		if keyOf(j) != key {
			return errSkip // cancelled or moved on meanwhile
		}
		if herr != nil {
			e.handlerFailed(t, j, herr)
		} else if oerr != nil {
			j.StateHistory = store.CloneMap(history)
			e.offloadFailed(t, j, oerr)
		} else {
			j.StateHistory = store.CloneMap(history)
			if err := e.apply(ctx, t, j, bp, out, ids); err != nil {
				return err
			}
			if next := e.stepsAfter(ctx, t, j, bp); next != nil {
				*j = *next
			}
		}
		t.fx.DoneReady, released = true, true
		return nil
	})
	return released && err == nil, err
}

// runState runs the handler of a job's current state. It returns the
// outcome, the state history the handler may have written to, and the
// handler's error, which is also recorded on the span in ctx.
func (e *Engine) runState(ctx context.Context, j *store.Job, bp *blueprint.Blueprint) (blueprint.Outcome, map[string]any, error) {
	history := store.CloneMap(j.StateHistory)
	if history == nil {
		history = map[string]any{}
	}
	// The handler's logger gets the job's attributes when it first logs
	// (blueprint.Context.Logger).
	logger := e.log
	span := trace.SpanFromContext(ctx)
	if sc := span.SpanContext(); sc.IsValid() {
		logger = logger.With("trace_id", sc.TraceID().String())
	}
	in := blueprint.Input{
		JobID: j.ID, State: j.CurrentState, InitialData: store.CloneMap(j.InitialData), StateHistory: history,
		LastResult: handlerResult(j.LastResult), Client: handlerClient(j.Client), Logger: logger, BlobBucket: e.blobBucket(),
		Branches: handlerBranches(j.BranchResults),
	}
	out, herr := bp.Execute(ctx, in)
	if herr == nil {
		herr = e.checkParamRefs(ctx, j, out) // no reading another client's files
	}
	if herr != nil {
		span.RecordError(herr)
		span.SetStatus(codes.Error, herr.Error())
	}
	return out, history, herr
}

// firstStep runs the start state of a job being created with the job's
// create (see stepNow): one write instead of a write, a trip through the
// ready queue, a read and a second write.
func (e *Engine) firstStep(ctx context.Context, t *txn, j *store.Job, bp *blueprint.Blueprint) *store.Job {
	whole := *j
	whole.Loaded.All = true // a job being created has no part stored elsewhere
	return e.stepNow(ctx, t, &whole, bp)
}

// stepAfter runs the step of a job that t moved to a state with a handler
// (it marked the job ready) with t's write: the step after a result is
// committed with the result. The handler sees the whole job (an
// aggregator, every branch): on a view, stepAfter asks mutate for the
// whole job instead (t.needAll). It returns the job after the step, or
// nil when the step is left to an executor.
func (e *Engine) stepAfter(ctx context.Context, t *txn, j *store.Job, bp *blueprint.Blueprint) *store.Job {
	i := slices.Index(t.fx.Ready, j.ID)
	if i < 0 || t.needAll {
		return nil
	}
	if !j.Loaded.All {
		t.needAll = true
		return nil
	}
	ready := t.fx.Ready
	t.fx.Ready = slices.Delete(slices.Clone(ready), i, i+1) // the step is this one
	// The step continues the job's trace, as an executor's would, rather
	// than the trace of the request that brought the result.
	ctx = withTrace(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), j.TraceContext)
	next := e.stepNow(ctx, t, j, bp)
	if next == nil {
		t.fx.Ready = ready
	}
	return next
}

// maxInlineSteps bounds the steps that a create, a result, an
// executor's step or a parent's resumption takes with its write after the
// one it made (see stepsAfter).
const maxInlineSteps = 8

// stepsAfter is stepAfter again while each step moves the job on to
// another state with a handler (quick decisions that dispatch nothing
// and wait for nothing), so that a run of them is committed with the
// write that led to it. A job still moving after maxInlineSteps is left
// to an executor. It returns the job after the last step taken, or nil
// when none was.
func (e *Engine) stepsAfter(ctx context.Context, t *txn, j *store.Job, bp *blueprint.Blueprint) *store.Job {
	var last *store.Job
	for range maxInlineSteps {
		next := e.stepAfter(ctx, t, j, bp)
		if next == nil {
			break
		}
		last, j = next, next
	}
	return last
}

// stepNow runs the handler of the state j is in, j whole, and applies its
// outcome to a copy of j in a txn of its own, which t then absorbs, so
// that the step is committed with t's write instead of by an executor
// after a trip through the ready queue, a read and a write. It returns the
// copy, or nil, leaving t alone, when the step is better left to an
// executor: the handler failed (retries and quarantine live there) or the
// outcome could not be applied.
func (e *Engine) stepNow(ctx context.Context, t *txn, j *store.Job, bp *blueprint.Blueprint) *store.Job {
	ctx, span := e.startSpan(ctx, "step "+j.Blueprint+"/"+j.CurrentState, j)
	defer span.End()
	out, history, herr := e.runState(ctx, j, bp)
	if herr != nil || ctx.Err() != nil {
		return nil
	}
	ids := newStepIDs(j.ID)
	var oerr error
	ids.offloaded, oerr = e.offloadParams(ctx, j.ID, &out, ids)
	if ctx.Err() != nil {
		return nil
	}
	next := j.Clone()
	next.StateHistory = history
	step := &txn{now: t.now, mayHand: t.mayHand}
	if oerr != nil {
		e.offloadFailed(step, next, oerr)
	} else if err := e.apply(ctx, step, next, bp, out, ids); err != nil || step.needAll {
		// Params offloaded above stay behind: the executor's run of the
		// step stores its own.
		step.settle(false)
		return nil
	}
	t.absorb(step)
	return next
}

// offloadFailed fails a job whose task params could not be stored.
func (e *Engine) offloadFailed(t *txn, j *store.Job, err error) {
	j.Blobs = true // objects written before the failure go at the end of retention
	e.finish(t, j, protocol.StatusFailed, fmt.Sprintf("state %q: could not store the task params in blob storage: %v", j.CurrentState, err), nil)
}

// failStep ends a job outside a handler (unknown blueprint and such).
func (e *Engine) failStep(ctx context.Context, j *store.Job, status protocol.JobStatus, msg string) error {
	key := keyOf(j)
	_, err := e.mutate(ctx, j.ID, func(t *txn, j *store.Job) error {
		if keyOf(j) != key {
			return errSkip
		}
		e.finish(t, j, status, msg, nil)
		return nil
	})
	return err
}

// handlerFailed retries a failing handler with backoff, then quarantines
// the job. Misuse of the action rules fails the job at once.
func (e *Engine) handlerFailed(t *txn, j *store.Job, herr error) {
	if errors.Is(herr, blueprint.ErrMisuse) {
		e.finish(t, j, protocol.StatusFailed, herr.Error(), nil)
		return
	}
	t.emit(Event{Type: EventHandlerFailed, State: j.CurrentState, Detail: map[string]any{"error": herr.Error(), "attempt": j.RetryCount + 1}})
	if j.RetryCount >= e.cfg.MaxRetries {
		e.finish(t, j, protocol.StatusQuarantined,
			fmt.Sprintf("handler for state %q failed after %d attempts: %v", j.CurrentState, j.RetryCount+1, herr), nil)
		return
	}
	j.RetryCount++
	j.Status = protocol.StatusRunning
	j.ErrorMessage = fmt.Sprintf("handler for state %q failed (attempt %d of %d, retrying): %v", j.CurrentState, j.RetryCount, e.cfg.MaxRetries+1, herr)
	t.fx.Timers = append(t.fx.Timers, store.Timer{
		JobID: j.ID, Kind: store.TimerStep, Ref: j.CurrentState, Seq: j.RetryCount,
		At: t.now.Add(e.backoff(j.RetryCount)),
	})
}

// backoff returns the delay before retry number n (1-based): exponential
// from RetryBackoff up to RetryBackoffMax, with "equal jitter" so that
// retries of many jobs spread out.
func (e *Engine) backoff(n int) time.Duration {
	// Double until the cap, comparing before each shift so that a long
	// base cannot overflow and wrap around to a short delay.
	d, ceiling := max(e.cfg.RetryBackoff, 1), e.cfg.RetryBackoffMax
	for i := 1; i < n && d < ceiling; i++ {
		if d > ceiling/2 {
			d = ceiling
			break
		}
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// stepIDs is what a step fixes before its write: the ids of what it
// creates, and the params it offloaded to blob storage (by task index).
// Task and child job ids share the job's tree key (store.NewTreeID), so
// that a sharded store keeps a job tree together.
type stepIDs struct {
	job       string
	task      string
	child     string
	seed      string
	offloaded []map[string]protocol.FileMetadata
}

func newStepIDs(jobID string) stepIDs {
	return stepIDs{job: jobID, task: "task-" + store.NewTreeID(jobID), child: store.NewTreeID(jobID), seed: uuid.NewString()}
}

// branch is the id of the i-th task of a parallel dispatch.
func (ids stepIDs) branch(i int) string {
	return store.SameTree(uuid.NewSHA1(uuid.MustParse(ids.seed), fmt.Appendf(nil, "%d", i)), ids.job).String()
}

// offloadedFor is the params metadata offloaded for task i.
func (ids stepIDs) offloadedFor(i int) map[string]protocol.FileMetadata {
	if i < len(ids.offloaded) {
		return ids.offloaded[i]
	}
	return nil
}

// apply carries out the action a handler chose.
func (e *Engine) apply(ctx context.Context, t *txn, j *store.Job, bp *blueprint.Blueprint, out blueprint.Outcome, ids stepIDs) error {
	if msg := policyViolation(j, out.Action); msg != "" {
		e.finish(t, j, protocol.StatusFailed, msg, nil)
		return nil
	}
	switch a := out.Action.(type) {
	case nil:
		status, ok := bp.IsEnd(j.CurrentState)
		if !ok {
			e.finish(t, j, protocol.StatusFailed, fmt.Sprintf("state %q chose no action", j.CurrentState), nil)
			return nil
		}
		var result any
		if out.HasResult {
			result = out.Result
		}
		e.finish(t, j, status, "", result)
	case blueprint.GoToAction:
		e.transition(t, j, bp, a.State)
	case blueprint.DispatchAction:
		run := e.newRun(ids.task, a.Task, a.Strategy, false, t)
		e.attachMetadata(j, run, ids.offloadedFor(0))
		j.Status = protocol.StatusWaitingForWorker
		j.Routes = a.Routes
		j.Tasks = map[string]*store.TaskRun{run.ID: run}
		j.ErrorMessage = ""
		if err := e.placeNew(ctx, t, j, run); err != nil {
			return err
		}
	case blueprint.ParallelAction:
		if len(a.Tasks) > e.cfg.MaxFanOut {
			e.finish(t, j, protocol.StatusFailed, fmt.Sprintf("state %q dispatches %d parallel tasks, more than the limit of %d (MaxFanOut, MAX_FAN_OUT)",
				j.CurrentState, len(a.Tasks), e.cfg.MaxFanOut), nil)
			return nil
		}
		j.Status = protocol.StatusWaitingParallel
		j.Aggregator = a.Aggregator
		j.BranchResults = map[string]store.Result{}
		j.BranchesLeft, j.BranchesDone = len(a.Tasks), 0
		j.Tasks = map[string]*store.TaskRun{}
		j.Routes = nil
		j.ErrorMessage = ""
		j.ProgressMessage = fmt.Sprintf("0 of %d parallel tasks done", len(a.Tasks))
		for i, task := range a.Tasks {
			run := e.newRun(ids.branch(i), task, a.Strategy, true, t)
			e.attachMetadata(j, run, ids.offloadedFor(i))
			j.Tasks[run.ID] = run
			if err := e.placeNew(ctx, t, j, run); err != nil {
				return err
			}
		}
	case blueprint.ChildAction:
		child, ok := e.Blueprint(a.Blueprint)
		if !ok {
			e.finish(t, j, protocol.StatusFailed, fmt.Sprintf("state %q runs unknown blueprint %q", j.CurrentState, a.Blueprint), nil)
			return nil
		}
		cj := &store.Job{
			ID: ids.child, Blueprint: child.Name(), Status: protocol.StatusPending, CurrentState: child.StartState(),
			InitialData: a.InitialData, StateHistory: map[string]any{}, ParentJobID: j.ID,
			Client: j.Client, TraceContext: j.TraceContext, Policy: store.CloneMap(j.Policy), CreatedAt: t.now, UpdatedAt: t.now,
		}
		j.Status = protocol.StatusWaitingForSubJob
		j.ChildJobID = cj.ID
		j.ProgressMessage = fmt.Sprintf("running child blueprint %s (job %s)", child.Name(), cj.ID)
		j.Routes = a.Routes
		j.ErrorMessage = ""
		t.fx.Create = append(t.fx.Create, cj)
		t.fx.Ready = append(t.fx.Ready, cj.ID)
		t.emit(Event{Type: EventJobCreated, Job: cj, JobID: cj.ID, State: cj.CurrentState, Detail: map[string]any{"parent_job_id": j.ID}})
	case blueprint.ApprovalAction:
		j.Status = protocol.StatusWaitingForHuman
		j.Routes = a.Routes
		decisions := slices.Sorted(maps.Keys(a.Routes))
		j.Approval = &store.Approval{Message: a.Message, Decisions: decisions, Token: crand.Text(), ExpiresAt: t.now.Add(e.cfg.ApprovalTokenTTL)}
		if j.WebhookURL != "" && e.cfg.Webhooks != nil {
			// Announces the approval URL (Ref "approval"; the end's webhook has none).
			t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerWebhook, Ref: approvalWebhook, Seq: 1, At: t.now})
		}
		j.ProgressMessage = a.Message
		j.ErrorMessage = ""
		// A summary event: history's view of the job shows it waiting.
		t.emit(Event{Type: EventApprovalAsked, State: j.CurrentState, Detail: map[string]any{"message": a.Message, "decisions": decisions}})
	default:
		return fmt.Errorf("unknown action %T", out.Action)
	}
	return nil
}

// transition moves a job to target. Entering an end state without a
// handler ends the job in the same write.
func (e *Engine) transition(t *txn, j *store.Job, bp *blueprint.Blueprint, target string) {
	if j.TransitionCount >= e.cfg.MaxTransitions {
		e.finish(t, j, protocol.StatusFailed, fmt.Sprintf(
			"blueprint execution exceeded the maximum of %d transitions: suspected infinite loop", e.cfg.MaxTransitions), nil)
		return
	}
	prev := j.CurrentState
	j.CurrentState = target
	j.TransitionCount++
	j.RetryCount = 0
	j.ErrorMessage = ""
	j.FailedState = "" // a failure route sets it after the move
	j.Tasks, j.Routes, j.Approval, j.Aggregator, j.ChildJobID = nil, nil, nil, "", ""
	j.BranchResults = nil // the aggregator that read them has run
	j.BranchesLeft, j.BranchesDone = 0, 0
	t.emit(Event{Type: EventStateEntered, State: target, PrevState: prev})
	if status, isEnd := bp.IsEnd(target); isEnd && !bp.HasEndHandler(target) {
		e.finish(t, j, status, "", nil)
		return
	}
	j.Status = protocol.StatusRunning
	t.fx.Ready = append(t.fx.Ready, j.ID)
}

// finish ends a job: its status, message and result are set, outstanding
// tasks are withdrawn (workers running them are told to stop) and the parent,
// if any, is woken to resume.
func (e *Engine) finish(t *txn, j *store.Job, status protocol.JobStatus, msg string, result any) {
	if !t.wantAll(j) {
		return // every outstanding task must be withdrawn: mutate reads them all
	}
	j.Status = status
	if msg != "" {
		j.ErrorMessage = msg
	}
	switch {
	case result != nil:
		j.Result = result
	case j.StateHistory[j.CurrentState] != nil:
		j.Result = j.StateHistory[j.CurrentState]
	default:
		j.Result = store.CloneMap(j.StateHistory)
	}
	finished := t.now
	j.FinishedAt = &finished
	j.ProgressMessage = "" // the last step's message no longer holds; status says it
	if status == protocol.StatusFinished {
		j.Progress = 1
	}
	for _, id := range slices.Sorted(maps.Keys(j.Tasks)) {
		run := j.Tasks[id]
		t.fx.Remove = append(t.fx.Remove, id)
		t.fx.Cancel = append(t.fx.Cancel, runTimerKeys(j.ID, run, true)...)
		if run.State == store.TaskRunning && run.WorkerID != "" {
			t.emit(Event{Type: EventCancelTask, TaskID: id, WorkerID: run.WorkerID})
		}
	}
	j.Tasks, j.Routes, j.Approval, j.Aggregator = nil, nil, nil, ""
	if j.ParentJobID != "" {
		t.fx.Ready = append(t.fx.Ready, j.ParentJobID)
	}
	e.armBlobCleanup(t, j)
	if j.WebhookURL != "" && e.cfg.Webhooks != nil {
		t.fx.Timers = append(t.fx.Timers, endNotice(j, 1, t.now))
	}
	t.emit(Event{Type: EventJobEnded, State: j.CurrentState, Detail: map[string]any{"status": string(status), "error": msg}})
}

// resumeFromChild moves a parent on once its child job has ended: along
// "success" when the child finished, "failure" otherwise. The guard on the
// child id makes it happen exactly once.
func (e *Engine) resumeFromChild(ctx context.Context, parent *store.Job) error {
	child, err := e.store.LoadJob(ctx, parent.ChildJobID)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return err
	}
	if !missing && !child.Status.Terminal() {
		return nil
	}
	childID := parent.ChildJobID
	_, err = e.mutate(ctx, parent.ID, func(t *txn, j *store.Job) error {
		if j.Status != protocol.StatusWaitingForSubJob || j.ChildJobID != childID {
			return errSkip
		}
		bp, err := e.blueprintOf(j)
		if err != nil {
			return err
		}
		summary := map[string]any{"outcome": "failure", "status": "missing", "error_message": "child job no longer exists"}
		outcome := "failure"
		if !missing {
			if child.Status == protocol.StatusFinished {
				outcome = "success"
			}
			summary = map[string]any{
				"outcome": outcome, "status": string(child.Status), "final_state": child.CurrentState,
				"error_message": child.ErrorMessage, "result": store.CloneValue(child.Result), "blueprint": child.Blueprint,
			}
		}
		if j.StateHistory == nil {
			j.StateHistory = map[string]any{}
		}
		j.StateHistory["sub_job_"+childID+"_result"] = summary
		data, _ := summary["result"].(map[string]any)
		j.LastResult = &store.Result{TaskID: childID, Type: "blueprint", Status: outcome, Data: store.CloneMap(data)}
		target, ok := j.Routes[outcome]
		if !ok {
			e.finish(t, j, protocol.StatusFailed, fmt.Sprintf(
				"child job %s ended %s and state %q routes no %q outcome", childID, summary["status"], j.CurrentState, outcome), nil)
			return nil
		}
		from := j.CurrentState
		e.transition(t, j, bp, target)
		if outcome == "failure" {
			j.FailedState = from // where a retry of the job starts again
		}
		if next := e.stepsAfter(ctx, t, j, bp); next != nil {
			*j = *next
		}
		return nil
	})
	return err
}
