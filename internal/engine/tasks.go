package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

func (e *Engine) newRun(id string, task blueprint.Task, strategy blueprint.Strategy, branch bool, t *txn) *store.TaskRun {
	run := &store.TaskRun{
		ID: id, Spec: specOf(task), Strategy: string(strategy), Branch: branch, Attempt: 1,
		State: store.TaskQueued,
	}
	run.Spec.Params = store.CloneMap(task.Params)
	if run.Spec.Params == nil {
		run.Spec.Params = map[string]any{}
	}
	if task.ResultTimeout > 0 {
		d := t.now.Add(task.ResultTimeout)
		run.Deadline = &d
	}
	return run
}

// runTimerKeys are the keys of the timers a task has armed: its result
// deadline, if any, and the one timer of its current attempt's state
// (queued: the dispatch timeout; running: the execution timeout; waiting
// for a retry: the retry). Each change of state replaces that timer in
// the same write. A timer missed here would fire stale and do nothing.
func runTimerKeys(jobID string, run *store.TaskRun, withResult bool) []string {
	var keys []string
	if withResult && run.Deadline != nil {
		keys = append(keys, store.Timer{JobID: jobID, Kind: store.TimerResult, Ref: run.ID}.Key())
	}
	kind := map[store.TaskState]store.TimerKind{
		store.TaskQueued: store.TimerDispatch, store.TaskRunning: store.TimerExecution, store.TaskRetryWait: store.TimerRetry,
	}[run.State]
	if kind != "" {
		keys = append(keys, store.Timer{JobID: jobID, Kind: kind, Ref: run.ID, Seq: run.Attempt}.Key())
	}
	return keys
}

// placeNew queues a freshly created task and arms its result deadline.
func (e *Engine) placeNew(ctx context.Context, t *txn, j *store.Job, run *store.TaskRun) error {
	if run.Deadline != nil {
		t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerResult, Ref: run.ID, At: *run.Deadline})
	}
	return e.place(ctx, t, j, run)
}

// place chooses a worker for a task and queues it there, or in the pending
// queue of its type when no worker is eligible now, and arms the dispatch
// timeout.
func (e *Engine) place(ctx context.Context, t *txn, j *store.Job, run *store.TaskRun) error {
	ctx, span := e.startSpan(withTrace(ctx, j.TraceContext), "dispatch "+run.Spec.Type, j)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("avtomatika.task.id", run.ID), attribute.Int("avtomatika.task.attempt", run.Attempt),
			attribute.String("avtomatika.strategy", run.Strategy))
	}
	defer span.End()
	if tc := traceCarrier(ctx); tc != nil {
		run.TraceContext = tc
	}
	// QueuedAt is when the task last entered a queue: a retry or a task
	// moved off a dead worker starts its wait (for stealing, the dispatch
	// timeout's message and the wait metric) anew.
	run.QueuedAt = t.now
	if !run.Branch {
		j.Status = protocol.StatusWaitingForWorker // again, for a retry or a move
	}
	req := requestOf(j.Routes, run)
	cands, err := e.txnCandidates(ctx, t)
	if err != nil {
		return err
	}
	eligible, why := dispatch.Filter(req, cands, e.cfg.Dispatch)
	qt := store.QueuedTask{JobID: j.ID, Run: *run, Score: store.Score(run.Spec.Priority, t.now, e.cfg.PriorityAging)}
	decision := &store.Decision{Strategy: run.Strategy, Candidates: len(eligible)}
	if len(eligible) > 0 {
		chosen, reason, err := dispatch.Choose(blueprint.Strategy(run.Strategy), req, eligible, e.cfg.Dispatch, func() (int64, error) {
			return e.store.Incr(ctx, "rr:"+run.Spec.Type, 1, time.Time{})
		})
		if err != nil {
			return err
		}
		qt.Worker, decision.WorkerID, decision.Reason = chosen.Worker.ID, chosen.Worker.ID, reason
		for i := range cands {
			if cands[i].Worker.ID == chosen.Worker.ID {
				cands[i].Load++ // the next task of this txn sees it
			}
		}
		if why != "" {
			decision.Reason += "; " + why // below the reputation floor
		}
		if !run.Branch {
			j.ProgressMessage = "task " + run.Spec.Type + " queued for worker " + chosen.Worker.ID
			if why != "" {
				j.ProgressMessage += " (" + why + ")"
			}
		}
	} else {
		decision.Reason = why
		j.ProgressMessage = "waiting: " + why
		t.emit(Event{Type: EventTaskWaiting, TaskID: run.ID, State: j.CurrentState,
			Detail: branchMark(run, map[string]any{"type": run.Spec.Type, "strategy": run.Strategy, "reason": why, "attempt": run.Attempt})})
	}
	recordDispatch(t, j, run, *decision)
	span.SetAttributes(attribute.String("avtomatika.worker.id", decision.WorkerID), attribute.Int("avtomatika.candidates", decision.Candidates),
		attribute.String("avtomatika.reason", decision.Reason))
	if qt.Worker != "" && t.mayHand {
		// A poll of the chosen worker waits in this process: the task goes
		// to it with this commit, its pickup written with its dispatch (one
		// write, not two, and no queue between).
		if poll := e.hub.reserve(store.WorkerQueue(qt.Worker)); poll != nil {
			payload := e.start(t, j, run, qt.Worker)
			qt.Run = *run.Clone()
			t.fx.Hand = append(t.fx.Hand, qt)
			t.handoffs = append(t.handoffs, handoff{poll: poll, payload: payload})
			return nil
		}
	}
	run.State = store.TaskQueued
	qt.Run = *run.Clone()
	t.fx.Enqueue = append(t.fx.Enqueue, qt)
	if timeout := e.dispatchTimeout(run); timeout > 0 {
		t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerDispatch, Ref: run.ID, Seq: run.Attempt, At: t.now.Add(timeout)})
	}
	return nil
}

// dispatchTimeout is how long a queued task may wait for a worker (0: for
// ever): its own, else the configured one.
func (e *Engine) dispatchTimeout(run *store.TaskRun) time.Duration {
	if run.Spec.DispatchTimeout != 0 {
		return run.Spec.DispatchTimeout
	}
	return e.cfg.DispatchTimeout
}

// recordDispatch keeps a dispatch decision on the task and in the job's
// dispatches; a decision that chose a worker is announced as
// EventTaskDispatched, which metrics count and history records.
func recordDispatch(t *txn, j *store.Job, run *store.TaskRun, d store.Decision) {
	run.Decision = &d
	j.Dispatches = append(j.Dispatches, store.Dispatch{Decision: d, TaskID: run.ID, Type: run.Spec.Type, Attempt: run.Attempt, At: t.now})
	if d.WorkerID != "" {
		t.emit(Event{Type: EventTaskDispatched, TaskID: run.ID, WorkerID: d.WorkerID, State: j.CurrentState,
			Detail: branchMark(run, map[string]any{"type": run.Spec.Type, "strategy": run.Strategy, "candidates": d.Candidates, "reason": d.Reason, "attempt": run.Attempt})})
	}
}

// branchMark marks a dispatch event's detail as a fan-out branch's
// ("branch": true), so that the audit trail tells branches from the
// state's single task (the console's branches table).
func branchMark(run *store.TaskRun, detail map[string]any) map[string]any {
	if run.Branch {
		detail["branch"] = true
	}
	return detail
}

// requestOf is what a task asks of its worker. routes are the job's routes
// for the task's state: a single task must be able to end in any status
// they name, a parallel branch (which does not route) in none.
func requestOf(routes map[string]string, run *store.TaskRun) dispatch.Request {
	req := dispatch.Request{
		Type: run.Spec.Type, Requirements: run.Spec.Requirements, MaxCost: run.Spec.MaxCost, Exclude: run.Excluded,
	}
	if !run.Branch && len(routes) > 0 {
		req.Statuses = slices.Sorted(maps.Keys(routes))
	}
	return req
}

// routeCache holds the routes of the jobs read during one scan of queues,
// by job id.
type routeCache map[string]map[string]string

// queuedRequest is requestOf for a task found in a queue, whose job is not
// at hand. The statuses the job routes on can rule out only a worker that
// declares which statuses its skill returns, so the job is read only for
// such a worker, and once per scan (routes, made on first use).
func (e *Engine) queuedRequest(ctx context.Context, w *store.Worker, qt *store.QueuedTask, routes *routeCache) (dispatch.Request, error) {
	run := &qt.Run
	if run.Branch || !declaresStatuses(w, run.Spec.Type) {
		return requestOf(nil, run), nil
	}
	if *routes == nil {
		*routes = routeCache{}
	}
	r, ok := (*routes)[qt.JobID]
	if !ok {
		j, err := e.store.LoadJob(ctx, qt.JobID) // the header has the routes
		switch {
		case errors.Is(err, store.ErrNotFound):
			// The job expired: the claim goes through and pickup drops
			// the orphaned task.
		case err != nil:
			return dispatch.Request{}, fmt.Errorf("read job %s of queued task %s: %w", qt.JobID, run.ID, err)
		default:
			r = j.Routes
		}
		(*routes)[qt.JobID] = r
	}
	return requestOf(r, run), nil
}

// declaresStatuses reports whether w lists the result statuses of skill.
func declaresStatuses(w *store.Worker, skill string) bool {
	for _, s := range w.Skills {
		if s.Name == skill && len(s.OutputStatus) > 0 {
			return true
		}
	}
	return false
}

// txnCandidates returns the dispatch candidates of a txn, read from the
// store once: a fan-out places all its tasks on one snapshot, in which the
// tasks placed so far count toward their workers' loads.
func (e *Engine) txnCandidates(ctx context.Context, t *txn) ([]dispatch.Candidate, error) {
	if !t.candsRead {
		cands, err := e.candidates(ctx)
		if err != nil {
			return nil, err
		}
		t.cands, t.candsRead = cands, true
	}
	return t.cands, nil
}

// candidates returns the live workers (see roster) with their reputation
// and load.
func (e *Engine) candidates(ctx context.Context) ([]dispatch.Candidate, error) {
	workers, err := e.roster.get(ctx, e.store)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	if len(workers) == 0 {
		return nil, nil
	}
	ids := make([]string, len(workers))
	for i, w := range workers {
		ids[i] = w.ID
	}
	figures, err := e.store.WorkerFigures(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("read worker reputations and loads: %w", err)
	}
	out := make([]dispatch.Candidate, len(workers))
	for i, w := range workers {
		rep, ok := figures.Reputations[w.ID]
		if !ok {
			rep = 1
		}
		out[i] = dispatch.Candidate{Worker: w, Reputation: rep, Load: figures.Loads[w.ID]}
	}
	return out, nil
}

// NextTask is a worker's long poll: it returns the next task for the
// worker, waiting up to wait (PollTimeout when zero) for one to arrive. It
// returns nil when none came.
func (e *Engine) NextTask(ctx context.Context, workerID string, wait time.Duration) (*protocol.TaskPayload, error) {
	done := e.done()
	if done == nil {
		return nil, ErrNotStarted
	}
	w, err := e.poller(ctx, workerID)
	if err != nil {
		return nil, err
	}
	if wait <= 0 || wait > e.cfg.PollTimeout {
		wait = e.cfg.PollTimeout
	}
	queues := []string{store.WorkerQueue(workerID)}
	for _, s := range w.Skills {
		queues = append(queues, store.PendingQueue(s.Name))
	}
	sub := e.hub.subscribe(queues)
	defer e.hub.unsubscribe(sub)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var holdUntil time.Time // set by the poll's first hold
	for {
		held := e.holding(workerID, queues[0], &holdUntil)
		if !held {
			payload, err := e.takeTask(ctx, w)
			if payload != nil {
				// More may wait in the worker's queue: pass the wake-up to
				// another of its polls (see hub.notify).
				e.hub.unsubscribe(sub)
				e.hub.notifyOne(queues[0])
				return e.handedOver(ctx, workerID, payload), nil
			}
			if err != nil {
				return nil, err
			}
		}
		// Look again when the hold ends, or when steal scans resume, in
		// case there is one to do.
		var rescan <-chan time.Time
		if held {
			rescan = time.After(time.Until(holdUntil))
		} else if d := time.Until(time.Unix(0, e.stealIdleUntil.Load())); d > 0 {
			rescan = time.After(d)
		}
		// Parked, a dispatch to the worker may hand this poll its task
		// (see place).
		e.hub.park(sub)
		var handed *protocol.TaskPayload
		got, ended := false, false
		select {
		case <-sub.wake:
			if held {
				e.asking.woke(workerID)
			}
		case handed = <-sub.handed:
			got = true
		case <-rescan:
		case <-timer.C:
			ended = true
		case <-ctx.Done():
			ended = true
		case <-done:
			ended = true
		}
		if e.hub.unpark(sub) && !got {
			handed = <-sub.handed // its dispatch is being committed
		}
		if handed == nil && !ended {
			continue
		}
		// A wake-up this poll will not use goes to another of the
		// worker's polls (unsubscribed first, so that it is not this one).
		e.hub.unsubscribe(sub)
		if len(sub.wake) > 0 {
			e.hub.notifyOne(queues[0])
		}
		if handed == nil {
			return nil, nil
		}
		return e.handedOver(ctx, workerID, handed), nil
	}
}

// holding reports whether a poll of the worker leaves the tasks this
// process queued for it to the worker's results that will ask for them
// (see asking), rather than looking for a task itself. A poll holds for
// pollHold at most in all, from its first hold (until).
func (e *Engine) holding(workerID, queue string, until *time.Time) bool {
	now := time.Now()
	if !until.IsZero() && !now.Before(*until) {
		return false
	}
	if !e.asking.hold(workerID, func() int { return e.placed.count(queue) }) {
		return false
	}
	if until.IsZero() {
		*until = now.Add(e.pollHold)
	}
	return true
}

// TakeTask returns the task the worker may run now, if there is one,
// without waiting: the pickup that a result's answer carries (see
// protocol.ResultResponse.NextTask), saving the worker a poll. While a
// poll of the worker's waits here (under load one nearly always does: a
// worker keeps polls out for its free slots), what other processes queued
// since it looked is left to that poll, which is woken for it (one that
// holds back for a result looks when the result ends, see asking); what this
// process queued for the worker is taken here all the same (takePlaced),
// as the poll it would wake costs the worker an exchange. A result that
// will ask tells AskingFor first, so that a poll leaves it that task.
func (e *Engine) TakeTask(ctx context.Context, workerID string) (*protocol.TaskPayload, error) {
	if e.done() == nil {
		return nil, ErrNotStarted
	}
	w, err := e.poller(ctx, workerID)
	if err != nil {
		return nil, err
	}
	var payload *protocol.TaskPayload
	if e.hub.waiting(store.WorkerQueue(workerID)) {
		payload, err = e.takePlaced(ctx, w)
	} else {
		payload, err = e.takeTask(ctx, w)
	}
	if payload == nil || err != nil {
		return nil, err
	}
	return e.handedOver(ctx, workerID, payload), nil
}

// takePlaced picks up the first task this process queued for the worker,
// in its own queue or a pending one, if any (see pickupPlaced).
func (e *Engine) takePlaced(ctx context.Context, w *store.Worker) (*protocol.TaskPayload, error) {
	if payload, err := e.pickupPlaced(ctx, w, store.WorkerQueue(w.ID), fromOwnQueue); payload != nil || err != nil {
		return payload, err
	}
	if queue, ok := e.placed.earliest(pendingQueues(w)); ok {
		return e.pickupPlaced(ctx, w, queue, fromPending)
	}
	return nil, nil
}

// poller returns the registered worker workerID for a pickup.
func (e *Engine) poller(ctx context.Context, workerID string) (*store.Worker, error) {
	w, err := e.pollers.get(ctx, e.store, workerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorker, workerID)
	}
	return w, err
}

// handedOver returns the task picked up for a request, or nil when the
// request ended meanwhile: the worker will never see the task, so it is
// retried at once rather than after the execution timeout (no fault of the
// worker's).
func (e *Engine) handedOver(ctx context.Context, workerID string, payload *protocol.TaskPayload) *protocol.TaskPayload {
	if ctx.Err() == nil {
		return payload
	}
	e.loseTask(context.WithoutCancel(ctx), workerID, store.QueuedTask{JobID: payload.JobID, Run: store.TaskRun{ID: payload.TaskID, Attempt: payload.Attempt}},
		false, 0, "the request that took the task ended before the task reached the worker")
	return nil
}

// takeTask claims the best task the worker may run now: first from its own
// queue, then from the pending queues of its skills.
func (e *Engine) takeTask(ctx context.Context, w *store.Worker) (*protocol.TaskPayload, error) {
	if payload, err := e.pickupPlaced(ctx, w, store.WorkerQueue(w.ID), fromOwnQueue); payload != nil || err != nil {
		return payload, err
	}
	for {
		src, note := fromOwnQueue, ""
		qt, err := e.claimOwn(ctx, w)
		if err == nil && qt == nil {
			// First a pending task this process queued, the first of the
			// worker's skills, picked up with its claim.
			if queue, ok := e.placed.earliest(pendingQueues(w)); ok {
				payload, err := e.pickupPlaced(ctx, w, queue, fromPending)
				if payload != nil || err != nil {
					return payload, err
				}
			}
			src = fromPending
			qt, err = e.claimPending(ctx, w)
		}
		if err == nil && qt == nil {
			src = fromSteal
			qt, note, err = e.steal(ctx, w)
		}
		if err != nil || qt == nil {
			return nil, err
		}
		payload, err := e.pickup(ctx, w.ID, qt, src, note, false)
		if err != nil || payload != nil {
			return payload, err
		}
		// The task went away between claim and pickup: look again.
	}
}

// pendingQueues are the pending queues of a worker's skills.
func pendingQueues(w *store.Worker) []string {
	out := make([]string, len(w.Skills))
	for i, s := range w.Skills {
		out[i] = store.PendingQueue(s.Name)
	}
	return out
}

// pickupPlaced picks up a task this process queued in a queue of the
// worker's (its own or a pending one), if the task is still near the head
// of the queue: the claim is committed with the pickup
// (store.Effects.Claims), one write where a claim and a pickup take two
// round trips (with the job's copy at hand, see mutateParts). It returns
// nil when there is no such task; see placed.
func (e *Engine) pickupPlaced(ctx context.Context, w *store.Worker, queue string, src claimSource) (*protocol.TaskPayload, error) {
	g, ok := e.placed.take(queue)
	if !ok {
		return nil, nil
	}
	qt := g.task
	if src == fromPending {
		fit, err := e.fitsPending(ctx, w, &qt, &pendingScan{})
		if err != nil || !fit {
			e.placed.putBack(qt) // for another worker
			return nil, err
		}
	}
	payload, err := e.pickup(ctx, w.ID, &qt, src, "", true)
	if errors.Is(err, store.ErrNotHead) {
		if src == fromOwnQueue {
			e.placed.missed(queue, g)
		}
		return nil, nil
	}
	return payload, err
}

// claimOwn takes the head of the worker's own queue. Its tasks were placed
// on this worker, so the head is the one to run; polls of one worker that
// race each take a different task. Like claim, it runs to the end even
// when the poll is gone.
func (e *Engine) claimOwn(ctx context.Context, w *store.Worker) (*store.QueuedTask, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	queue := store.WorkerQueue(w.ID)
	done := e.placed.claiming(queue)
	qt, err := e.store.ClaimNext(ctx, queue, w.ID)
	done(qt)
	return qt, err
}

// claimPending takes the best-ranked pending task, across the worker's
// skills, that the worker is eligible for. It looks at the head of each
// queue first and further only when no head fits, because reading a task
// costs a decode and a backlog can be long.
func (e *Engine) claimPending(ctx context.Context, w *store.Worker) (*store.QueuedTask, error) {
	sc := &pendingScan{}
	if len(w.Skills) == 1 && !e.pollers.peekFirst(w.ID) {
		// One queue: its head is the task to take unless the worker may
		// not run it, so claim the head outright (claimHead checks it and
		// puts it back) rather than read it first, a round trip saved.
		got, unfit, err := e.claimHead(ctx, w, store.PendingQueue(w.Skills[0].Name), "", sc)
		if unfit {
			e.pollers.sawUnfit(w.ID)
		}
		if err != nil || got != nil {
			return got, err
		}
	}
	// Workers polling together race for the same heads: a lost race looks
	// at the new heads, and only a head this worker may not run sends it
	// deeper into the queues.
	for range 4 {
		qt, more, unfit, err := e.claimPendingWithin(ctx, w, sc, 1)
		if err != nil || qt != nil || !more {
			return qt, err
		}
		if unfit {
			break
		}
	}
	qt, _, _, err := e.claimPendingWithin(ctx, w, sc, 16)
	return qt, err
}

// pendingScan caches what one claimPending reads, across its passes: the
// polling worker's description, the routes of the jobs it looked at, and
// the live workers (read only when the worker meets a task it failed).
type pendingScan struct {
	cand      *dispatch.Candidate
	routes    routeCache
	others    []dispatch.Candidate
	othersSet bool
}

// claimPendingWithin tries the first depth tasks of each pending queue of
// the worker's skills, best first; more reports that a queue may hold
// further tasks, unfit that the worker may not run one of those it saw.
func (e *Engine) claimPendingWithin(ctx context.Context, w *store.Worker, sc *pendingScan, depth int) (qt *store.QueuedTask, more, unfit bool, err error) {
	var best []store.QueuedTask
	for _, s := range w.Skills {
		tasks, err := e.store.PeekTasks(ctx, store.PendingQueue(s.Name), depth)
		if err != nil {
			return nil, false, false, err
		}
		more = more || len(tasks) == depth
		best = append(best, tasks...)
	}
	if len(best) == 0 {
		return nil, false, false, nil
	}
	slices.SortFunc(best, func(a, b store.QueuedTask) int { return cmp.Compare(a.Score, b.Score) })
	for _, qt := range best {
		fit, err := e.fitsPending(ctx, w, &qt, sc)
		if err != nil {
			return nil, false, false, err
		}
		if !fit {
			unfit = true
			continue
		}
		if depth == 1 {
			// Polls race for the heads: take whichever task heads the
			// queue now, in one step, rather than the one seen.
			got, _, err := e.claimHead(ctx, w, qt.Queue(), qt.Run.ID, sc)
			if err != nil || got != nil {
				return got, false, false, err
			}
			continue
		}
		got, err := e.claim(ctx, qt.Run.ID, w.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return got, false, false, err
	}
	return nil, more, unfit, nil
}

// fitsPending reports whether a worker may take a pending task now.
func (e *Engine) fitsPending(ctx context.Context, w *store.Worker, qt *store.QueuedTask, sc *pendingScan) (bool, error) {
	if sc.cand == nil {
		c, err := e.candidateFor(ctx, w)
		if err != nil {
			return false, err
		}
		sc.cand = &c
	}
	req, err := e.queuedRequest(ctx, w, qt, &sc.routes)
	if err != nil {
		return false, err
	}
	if ok, _ := dispatch.Check(req, *sc.cand, e.cfg.Dispatch); !ok {
		return false, nil
	}
	if slices.Contains(req.Exclude, w.ID) {
		// The worker failed this task before: as in place(), it gets
		// the retry only when no other worker is eligible now.
		other, err := e.otherEligible(ctx, req, w.ID, sc)
		if err != nil || other {
			return false, err
		}
	}
	return true, nil
}

// claimHead claims the head of a pending queue for the worker. seen is the
// head the worker was found fit for, if any; another poll may have taken
// it: a head other than seen is checked now, and put back when the worker
// may not take it (unfit). It returns nil when the queue is empty or the
// head went back.
func (e *Engine) claimHead(ctx context.Context, w *store.Worker, queue, seen string, sc *pendingScan) (qt *store.QueuedTask, unfit bool, err error) {
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	got, err := e.store.ClaimNext(claimCtx, queue, w.ID)
	if got != nil {
		e.placed.claimed(queue, *got)
	}
	if err != nil || got == nil || (seen != "" && got.Run.ID == seen) {
		return got, false, err
	}
	fit, err := e.fitsPending(claimCtx, w, got, sc)
	if err == nil && fit {
		return got, false, nil
	}
	back := *got
	back.Worker = ""
	e.unclaim(claimCtx, &back, fmt.Errorf("the worker may not take the task it found at the head of its queue"))
	return nil, err == nil, err
}

// otherEligible reports whether a live worker other than self, and not
// excluded by req, passes every filter for req now.
func (e *Engine) otherEligible(ctx context.Context, req dispatch.Request, self string, sc *pendingScan) (bool, error) {
	if !sc.othersSet {
		cands, err := e.candidates(ctx)
		if err != nil {
			return false, err
		}
		sc.others, sc.othersSet = cands, true
	}
	for _, c := range sc.others {
		if c.Worker.ID == self || slices.Contains(req.Exclude, c.Worker.ID) {
			continue
		}
		if ok, _ := dispatch.Check(req, c, e.cfg.Dispatch); ok {
			return true, nil
		}
	}
	return false, nil
}

// candidateFor describes a polling worker for the filters. A worker that
// polls has a free slot, whatever its last heartbeat or the task count
// say: workers poll only when they can take a task.
func (e *Engine) candidateFor(ctx context.Context, w *store.Worker) (dispatch.Candidate, error) {
	// WorkerFigures, not Reputations: a store may answer it from the
	// figures it read for the last placement.
	f, err := e.store.WorkerFigures(ctx, w.ID)
	if err != nil {
		return dispatch.Candidate{}, fmt.Errorf("read reputation of %s: %w", w.ID, err)
	}
	rep, ok := f.Reputations[w.ID]
	if !ok {
		rep = 1
	}
	polling := w.Clone()
	polling.Status = protocol.WorkerIdle
	return dispatch.Candidate{Worker: polling, Reputation: rep}, nil
}

// claimSource says where a worker found the task it claimed.
type claimSource int

const (
	fromOwnQueue claimSource = iota // placed on the worker: place() recorded the decision
	fromPending                     // pulled from the pending queue of its type
	fromSteal                       // taken over from another worker's queue
)

// pickup records that a worker took a claimed task and arms its execution
// timeout. A task pulled from the pending queue or stolen gets a dispatch
// decision of its own (note is the steal's reason), as place() gives one to
// every task it queues for a worker. It returns nil if the task is no
// longer wanted.
func (e *Engine) pickup(ctx context.Context, workerID string, qt *store.QueuedTask, src claimSource, note string, claim bool) (*protocol.TaskPayload, error) {
	// The claim took the task out of its queue: its pickup is committed,
	// or the task goes back, whatever becomes of the poll that asked.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	var payload *protocol.TaskPayload
	_, err := e.mutateTask(ctx, qt.JobID, qt.Run.ID, func(t *txn, j *store.Job) error {
		payload = nil // of an attempt that was not committed
		run := j.Tasks[qt.Run.ID]
		if j.Status.Terminal() || run == nil || run.State != store.TaskQueued || run.Attempt != qt.Run.Attempt {
			return errSkip
		}
		if claim {
			t.fx.Claims = append(t.fx.Claims, store.Claim{Queue: qt.Queue(), TaskID: run.ID, Worker: workerID, Within: placedWithin})
		}
		if e.dispatchTimeout(run) > 0 {
			// Without one, no timer was armed (or one armed under another
			// configuration fires stale and does nothing).
			t.fx.Cancel = append(t.fx.Cancel, store.Timer{JobID: j.ID, Kind: store.TimerDispatch, Ref: run.ID, Seq: run.Attempt}.Key())
		}
		if src != fromOwnQueue {
			// A pull is decided by the worker that polls: one candidate.
			reason := note
			if src == fromPending {
				reason = fmt.Sprintf("claimed from the pending queue by %s (waited %s)", workerID, t.now.Sub(run.QueuedAt).Round(time.Millisecond))
			}
			recordDispatch(t, j, run, store.Decision{WorkerID: workerID, Strategy: run.Strategy, Candidates: 1, Reason: reason})
		}
		payload = e.start(t, j, run, workerID)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		payload = nil // set by an attempt that was not committed
	}
	switch {
	case claim:
		// Claimed with the pickup or not at all: nothing to give back.
	case err != nil:
		e.unclaim(ctx, qt, err)
	case payload == nil:
		// The task moved on (cancelled, job ended): forget the claim.
		err = e.store.ReleaseTask(ctx, workerID, qt.Run.ID)
	}
	return payload, err
}

// start marks a task as running on a worker in t: picked up by a poll, or
// handed to one at its dispatch. It returns the task's payload.
func (e *Engine) start(t *txn, j *store.Job, run *store.TaskRun, workerID string) *protocol.TaskPayload {
	run.State = store.TaskRunning
	run.WorkerID = workerID
	now := t.now
	run.PickedUpAt = &now
	timeout := run.Spec.Timeout
	if timeout <= 0 {
		timeout = e.cfg.TaskTimeout
	}
	at := now.Add(timeout)
	if run.Deadline != nil && run.Deadline.Before(at) {
		at = *run.Deadline
	}
	t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerExecution, Ref: run.ID, Seq: run.Attempt, At: at})
	if !run.Branch {
		j.Status = protocol.StatusRunning // the job's one task runs
		j.ProgressMessage = "task " + run.Spec.Type + " running on worker " + workerID
	}
	t.emit(Event{Type: EventTaskStarted, TaskID: run.ID, WorkerID: workerID, State: j.CurrentState,
		Detail: map[string]any{"type": run.Spec.Type, "attempt": run.Attempt, "queued_for": now.Sub(run.QueuedAt).Seconds()}})
	return payloadOf(j, run, t.now)
}

// claimTimeout bounds a claim and its pickup commit, which run to the end
// even when the poll that asked for them is gone.
const claimTimeout = 10 * time.Second

// claim takes a queued task for a worker. It does not stop half-way when
// the poll ends: a claim the store carried out but whose answer was lost
// would leave the task in no queue.
func (e *Engine) claim(ctx context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	defer cancel()
	return e.store.ClaimTask(ctx, taskID, workerID)
}

// unclaim puts a claimed task whose pickup could not be committed back in
// the queue it came from, with its place, so it is not stranded.
func (e *Engine) unclaim(ctx context.Context, qt *store.QueuedTask, cause error) {
	_, err := e.mutateTask(ctx, qt.JobID, qt.Run.ID, func(t *txn, j *store.Job) error {
		run := j.Tasks[qt.Run.ID]
		if j.Status.Terminal() || run == nil || run.State != store.TaskQueued || run.Attempt != qt.Run.Attempt {
			return errSkip
		}
		t.fx.Enqueue = append(t.fx.Enqueue, *qt)
		return nil
	})
	if err != nil {
		e.log.Error("a claimed task could not be picked up nor put back; it waits for its worker to go offline",
			"job_id", qt.JobID, "task_id", qt.Run.ID, "pickup_error", cause, "error", err)
	}
}

func payloadOf(j *store.Job, run *store.TaskRun, now time.Time) *protocol.TaskPayload {
	tc := run.TraceContext
	if len(tc) == 0 {
		tc = j.TraceContext
	}
	p := &protocol.TaskPayload{
		JobID: j.ID, TaskID: run.ID, Type: run.Spec.Type, Params: store.CloneMap(run.Spec.Params),
		Priority: run.Spec.Priority, Timestamp: now.Unix(), Attempt: run.Attempt,
		TracingContext: maps.Clone(tc), ParamsMetadata: store.CloneFileMetadata(run.ParamsMetadata),
	}
	if p.Params == nil {
		p.Params = map[string]any{}
	}
	p.Policy = store.CloneMap(j.Policy)
	if run.Deadline != nil {
		p.Deadline = protocol.UnixSeconds(run.Deadline.Unix())
	}
	return p
}

// steal takes over a task queued for another worker when that worker is
// busy, full or gone, or when the task has waited StealAfter: the thief
// must meet every requirement of the task, and the claim is atomic, so the
// task still runs once.
func (e *Engine) steal(ctx context.Context, thief *store.Worker) (qt *store.QueuedTask, note string, err error) {
	// A scan reads every worker queue: one runs at a time, and after one
	// that found nothing to take, the polls of the next moment skip it, so
	// that idle workers, whose polls all wake when a task ends, do not
	// rescan busy queues together or on every poll. A poll that skips
	// looks again when the pause is over (see NextTask).
	until := e.stealIdleUntil.Load()
	if time.Now().UnixNano() < until || !e.stealIdleUntil.CompareAndSwap(until, time.Now().Add(e.stealPause()).UnixNano()) {
		return nil, "", nil
	}
	defer func() {
		if err == nil && qt == nil {
			e.stealIdleUntil.Store(time.Now().Add(e.stealPause()).UnixNano())
		} else {
			e.stealIdleUntil.Store(0) // the next poll may scan at once
		}
	}()
	lengths, err := e.store.QueueLengths(ctx)
	if err != nil {
		return nil, "", err
	}
	own := store.WorkerQueue(thief.ID)
	var victims []string
	for q := range lengths {
		if q != own && strings.HasPrefix(q, store.WorkerQueue("")) {
			victims = append(victims, q)
		}
	}
	if len(victims) == 0 {
		return nil, "", nil
	}
	slices.SortFunc(victims, func(a, b string) int { return cmp.Compare(lengths[b], lengths[a]) })
	cand, err := e.candidateFor(ctx, thief)
	if err != nil {
		return nil, "", err
	}
	// One read of the live workers serves every victim's check.
	live, err := e.candidates(ctx)
	if err != nil {
		return nil, "", err
	}
	byID := make(map[string]*dispatch.Candidate, len(live))
	for i := range live {
		byID[live[i].Worker.ID] = &live[i]
	}
	var routes routeCache
	now := e.now()
	for _, q := range victims[:min(len(victims), 8)] {
		owner := strings.TrimPrefix(q, store.WorkerQueue(""))
		ownerBusy := unavailable(byID[owner])
		tasks, err := e.store.PeekTasks(ctx, q, 8)
		if err != nil {
			return nil, "", err
		}
		for _, qt := range tasks {
			waited := now.Sub(qt.Run.QueuedAt)
			if !ownerBusy && waited < e.cfg.StealAfter {
				continue
			}
			// A worker that failed the task never steals it: the task
			// already has a worker of its own.
			if slices.Contains(qt.Run.Excluded, thief.ID) {
				continue
			}
			req, err := e.queuedRequest(ctx, thief, &qt, &routes)
			if err != nil {
				return nil, "", err
			}
			if ok, _ := dispatch.Check(req, cand, e.cfg.Dispatch); !ok {
				continue
			}
			done := e.placed.stealing(q)
			got, err := e.claim(ctx, qt.Run.ID, thief.ID)
			done(got)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			reason := fmt.Sprintf("stolen from %s after %s in its queue", owner, waited.Round(time.Millisecond))
			if ownerBusy {
				reason = fmt.Sprintf("stolen from %s, which is busy or gone", owner)
			}
			return got, reason, nil
		}
	}
	return nil, "", nil
}

// stealPause is how long after a fruitless scan the next one waits: a
// twentieth of StealAfter, at most half a second, and short enough that a
// long poll sees scans resume.
func (e *Engine) stealPause() time.Duration {
	return min(e.cfg.StealAfter/20, e.cfg.PollTimeout/4, 500*time.Millisecond)
}

// unavailable reports whether a live worker cannot take tasks now: gone
// (nil), not idle, or over capacity (its load counts queued tasks too).
func unavailable(c *dispatch.Candidate) bool {
	if c == nil {
		return true
	}
	if s := c.Worker.Status; s != "" && s != protocol.WorkerIdle {
		return true
	}
	return c.Worker.MaxConcurrent > 0 && c.Load > c.Worker.MaxConcurrent
}
