package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/avtomatika-ai/avtomatika-go/internal/ctxtime"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// runningTask is a task between its arrival and its result.
type runningTask struct {
	task   *Task
	typ    string // skill type, for per-type limits
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	// returned is set when the handler has returned (its result may still
	// be on its way).
	returned atomic.Bool
	span     trace.Span
	// stopDeadline releases the task's deadline context.
	stopDeadline func()
}

// succeededBy reports whether a delivery of the same task id with attempt
// is the orchestrator's next attempt rather than a repeat of this one: a
// later attempt, once this one's handler has returned. The orchestrator
// retries a failed attempt as soon as it has this one's result, which can
// be before report returns and the task leaves w.running.
func (rt *runningTask) succeededBy(attempt int) bool {
	return rt.returned.Load() && attempt > rt.task.p.Attempt
}

// report sends the task's result once, to the orchestrator that delivered it.
func (rt *runningTask) report(res protocol.TaskResult) { rt.deliver(res, false) }

// deliver is report; with asked, the result also asks for the next task,
// under the poll reservation that handlerReturned made: the task that comes
// is admitted and returned, for the caller to run, and the reservation
// ends.
func (rt *runningTask) deliver(res protocol.TaskResult, asked bool) (next *runningTask) {
	t := rt.task
	var p *polledTask
	rt.once.Do(func() {
		p = t.c.sendResult(t.w.resultCtx, res, t.Logger, asked)
	})
	if !asked {
		return nil
	}
	var source *conn
	if p != nil {
		next = t.w.admit(t.c, p) // running before the reservation ends
		source = t.c
	}
	t.w.releaseAsked(source)
	return next
}

// handlerReturned frees the slot of a task whose handler has returned,
// while its result is still to be delivered. When the orchestrator that
// delivered the task may be polled now, the slot goes straight to a poll
// reservation for asking for the next task with the result (asked): under
// load a task then costs one round trip less.
func (w *Worker) handlerReturned(rt *runningTask) (asked bool) {
	usable := w.pollable(rt.task.c)
	var vetoed map[string]bool
	if usable {
		vetoed = w.vetoed()
	}
	w.mu.Lock()
	w.busy--
	if w.typeLoad[rt.typ]--; w.typeLoad[rt.typ] <= 0 {
		delete(w.typeLoad, rt.typ)
	}
	if usable {
		asked, _, _ = w.reserveLocked(vetoed)
	}
	w.mu.Unlock()
	if !asked {
		w.stateChanged() // room for a poll
	}
	return asked
}

// pollLoop asks the orchestrators for tasks whenever the worker has free
// capacity, following the multi-orchestrator mode, until ctx ends. While
// tasks keep coming, up to PollConcurrency-1 more long polls join it
// (extraPoller), so that a worker with many free slots does not take its
// tasks one poll round trip at a time; when polls come back empty, one
// poll is in flight, as with a single poller.
func (w *Worker) pollLoop(ctx context.Context) {
	select {
	case <-w.registered:
	case <-ctx.Done():
		return
	}
	var extra sync.WaitGroup
	for range w.cfg.PollConcurrency - 1 {
		extra.Go(func() { w.extraPoller(ctx) })
	}
	defer extra.Wait()
	for ctx.Err() == nil {
		changed := w.changedCh()
		ok, available, hot := w.reservePoll(false)
		if !ok {
			var recheck time.Time
			if w.cfg.CapacityChecker != nil {
				// Its answer may change without telling anyone.
				recheck = time.Now().Add(time.Second)
			}
			waitChange(ctx, changed, recheck)
			continue
		}
		cycle, wake := w.pollCycle()
		if len(cycle) == 0 {
			w.unreserve()
			waitChange(ctx, changed, wake)
			continue
		}
		got := false
		for i, c := range cycle {
			if i > 0 {
				if ok, available, hot = w.reservePoll(false); !ok {
					break
				}
			}
			p, ok := w.pollOnce(ctx, c, available, hot)
			if ctx.Err() != nil {
				return
			}
			if !ok || p == nil {
				continue
			}
			got = true
			if w.cfg.Mode == Waterfall {
				break
			}
		}
		if !got {
			ctxtime.Sleep(ctx, w.cfg.IdlePollDelay)
		}
	}
}

// extraPoller polls, next to pollLoop, the orchestrator that delivered the
// last task, while the last poll brought one and there is room.
func (w *Worker) extraPoller(ctx context.Context) {
	for ctx.Err() == nil {
		changed := w.changedCh()
		w.mu.Lock()
		c := w.lastSource
		w.mu.Unlock()
		usable := c != nil && w.pollable(c)
		ok, available, hot := false, []string(nil), []string(nil)
		if usable {
			ok, available, hot = w.reservePoll(true)
		}
		if !ok {
			waitChange(ctx, changed, time.Time{})
			continue
		}
		w.pollOnce(ctx, c, available, hot)
	}
}

// pollable reports whether orchestrator c may be polled now: registered
// and not backing off.
func (w *Worker) pollable(c *conn) bool {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	return c.isRegistered() && !c.pollNext.After(time.Now())
}

// pollOnce polls one orchestrator under a reservation of reservePoll,
// which it ends, starts the task that came, and keeps the back-off state.
// ok is false when the poll failed.
func (w *Worker) pollOnce(ctx context.Context, c *conn, available, hot []string) (p *polledTask, ok bool) {
	p, err := c.poll(ctx, available, hot)
	if err == nil && p != nil {
		w.startTask(c, p) // running before the reservation ends
	}
	if err != nil {
		w.releasePoll(nil)
		if ctx.Err() == nil {
			w.pollMu.Lock()
			c.pollFailed(err)
			w.pollMu.Unlock()
		}
		return nil, false
	}
	source := c
	if p == nil {
		source = nil
	}
	w.releasePoll(source)
	w.pollMu.Lock()
	c.pollOK()
	w.pollMu.Unlock()
	return p, true
}

// pollCycle returns the orchestrators to poll in this cycle, as the mode
// says, and when the earliest back-off ends if there are none.
func (w *Worker) pollCycle() ([]*conn, time.Time) {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	cands, wake := w.pollCandidates()
	if len(cands) > 0 && w.cfg.Mode == RoundRobin {
		cands = []*conn{pickRoundRobin(cands)}
	}
	return cands, wake
}

// pollCandidates returns the registered orchestrators that are not backing
// off, and when the earliest back-off ends (zero if none). The caller holds
// pollMu.
func (w *Worker) pollCandidates() ([]*conn, time.Time) {
	now := time.Now()
	var out []*conn
	var wake time.Time
	for _, c := range w.conns {
		if !c.isRegistered() {
			continue
		}
		if c.pollNext.After(now) {
			if wake.IsZero() || c.pollNext.Before(wake) {
				wake = c.pollNext
			}
			continue
		}
		out = append(out, c)
	}
	return out, wake
}

// pickRoundRobin is smooth weighted round robin: every candidate's current
// weight grows by its weight, the largest (first on ties) is picked and
// loses the total.
func pickRoundRobin(cands []*conn) *conn {
	total := 0
	var best *conn
	for _, c := range cands {
		c.rrCurrent += c.o.Weight
		total += c.o.Weight
		if best == nil || c.rrCurrent > best.rrCurrent {
			best = c
		}
	}
	best.rrCurrent -= total
	return best
}

func waitChange(ctx context.Context, changed <-chan struct{}, wake time.Time) {
	var timer <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(wake))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-changed:
	case <-timer:
	case <-ctx.Done():
	}
}

// startTask admits a task that a poll brought and runs it in a goroutine
// of its own (see run).
func (w *Worker) startTask(c *conn, p *polledTask) {
	if rt := w.admit(c, p); rt != nil {
		go w.run(rt)
	}
}

// admit makes a task that arrived running: counted in the worker's load
// and known by id, for a cancel. It returns nil for a repeat delivery of a
// task that runs already.
func (w *Worker) admit(c *conn, p *polledTask) *runningTask {
	t := &Task{p: p.TaskPayload, rawParams: p.rawParams, raw: p.raw, w: w, c: c,
		dir: filepath.Join(w.cfg.TaskFilesDir, taskDirName(p.TaskID))}
	typ := p.Type
	if s := w.skills[p.Type]; s != nil {
		typ = s.typ()
	}
	ctx, cancel := context.WithCancelCause(w.taskBase)
	ctx, span := w.startSpan(ctx, p.TaskPayload)
	if sc := span.SpanContext(); sc.IsValid() {
		t.traceID = sc.TraceID().String()
	}
	rt := &runningTask{task: t, typ: typ, ctx: ctx, cancel: cancel, span: span, stopDeadline: func() {}}
	if dl, ok := t.Deadline(); ok {
		rt.ctx, rt.stopDeadline = context.WithDeadline(ctx, dl)
	}

	w.mu.Lock()
	if prev, dup := w.running[p.TaskID]; dup && !prev.succeededBy(p.Attempt) {
		w.mu.Unlock()
		rt.stopDeadline()
		cancel(nil)
		t.Logger().Warn("task delivered again while running; ignored")
		return nil
	}
	w.running[p.TaskID] = rt
	w.busy++
	w.typeLoad[typ]++
	w.tasks.Add(1)
	w.mu.Unlock()
	w.stateChanged()
	if w.log.Enabled(ctx, slog.LevelDebug) {
		t.Logger().Debug("task received", "type", p.Type, "attempt", p.Attempt)
	}
	return rt
}

// run runs an admitted task to its delivered result, then the task that
// the result brought back, if any, and so on: one goroutine carries a
// stream of tasks, its stack grown once rather than once per task.
func (w *Worker) run(rt *runningTask) {
	for rt != nil {
		res := w.runTask(rt)
		rt.task.removeDir() // always, whatever the outcome
		endSpan(rt.span, res)
		rt.returned.Store(true)
		next := rt.deliver(res, w.handlerReturned(rt))
		w.finish(rt)
		rt = next
	}
}

// finish forgets a task whose result was delivered.
func (w *Worker) finish(rt *runningTask) {
	rt.stopDeadline()
	rt.cancel(nil)
	w.mu.Lock()
	if w.running[rt.task.p.TaskID] == rt { // not yet succeeded by a later attempt
		delete(w.running, rt.task.p.TaskID)
	}
	w.mu.Unlock()
	w.stateChanged()
	w.tasks.Done()
}

// runTask runs the handler of a task and turns its outcome into a result.
func (w *Worker) runTask(rt *runningTask) protocol.TaskResult {
	t := rt.task
	started := time.Now()
	res := w.outcome(rt)
	attrs := []any{"status", res.Status, "duration", time.Since(started).Round(time.Millisecond)}
	if res.Error != nil {
		attrs = append(attrs, "error_code", res.Error.Code, "error", res.Error.Message)
	}
	if w.log.Enabled(rt.ctx, slog.LevelInfo) {
		t.Logger().Info("task finished", attrs...)
	}
	w.metrics.observe(t.p.Type, res, time.Since(started))
	return res
}

func (w *Worker) baseResult(t *Task) protocol.TaskResult {
	return protocol.TaskResult{JobID: t.p.JobID, TaskID: t.p.TaskID, WorkerID: w.cfg.ID, OriginWorkerID: w.cfg.ID}
}

func (w *Worker) cancelledResult(t *Task) protocol.TaskResult {
	res := w.baseResult(t)
	res.Status = protocol.TaskCancelled
	return res
}

func (w *Worker) failure(t *Task, code, msg string) protocol.TaskResult {
	res := w.baseResult(t)
	res.Status = protocol.TaskFailure
	res.Error = &protocol.TaskError{Code: code, Message: msg}
	return res
}

func (w *Worker) outcome(rt *runningTask) protocol.TaskResult {
	t, ctx := rt.task, rt.ctx
	if key := w.cfg.OrchestratorSecretKey; key != "" {
		if err := protocol.VerifyTask(t.raw, key); err != nil {
			return w.failure(t, protocol.ErrSecurity, err.Error())
		}
	}
	if allowed, ok := t.p.Policy["allowed_skills"].([]any); ok && !slices.Contains(allowed, any(t.p.Type)) {
		return w.failure(t, protocol.ErrSecurity, fmt.Sprintf("task type %q is not permitted by the task's policy (allowed_skills %v)", t.p.Type, allowed))
	}
	s := w.skills[t.p.Type]
	if s == nil {
		return w.failure(t, protocol.ErrPermanent, "Unsupported skill: "+t.p.Type)
	}
	if sem := w.typeSems[s.typ()]; sem != nil {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
			return w.interrupted(t, ctx, ctx.Err())
		}
	}
	// s3:// params are fetched first, so that the schema sees restored
	// values; a failed download or integrity check skips the handler.
	if err := w.fetchInputs(ctx, t); err != nil {
		if ctx.Err() != nil {
			return w.interrupted(t, ctx, err)
		}
		res := w.baseResult(t)
		res.Status, res.Error = protocol.TaskFailure, toWireError(err)
		return res
	}
	if s.info.InputSchema != nil {
		doc, err := protocol.DecodeJSON(t.rawParams)
		if err == nil {
			err = validateJSON(doc, s.info.InputSchema, "params")
		}
		if err != nil {
			return w.failure(t, protocol.ErrInvalidInput, err.Error())
		}
	}

	h := s.handler
	for i := len(w.mws) - 1; i >= 0; i-- {
		h = w.mws[i](h)
	}
	out, err := call(ctx, h, t)

	cause := context.Cause(ctx)
	if ctx.Err() != nil && (errors.Is(cause, errCancelled) || (err != nil && errors.Is(cause, errShutdown))) {
		return w.interrupted(t, ctx, err)
	}
	res := w.baseResult(t)
	res.Data, res.Metadata = out.Data, out.Metadata
	if err != nil {
		res.Status = protocol.TaskFailure
		res.Error = toWireError(err)
		return w.checkJSON(t, res)
	}
	res.Status = out.Status
	if res.Status == "" {
		res.Status = protocol.TaskSuccess
	}
	if res.Status == protocol.TaskFailure {
		res.Error = &protocol.TaskError{Code: protocol.ErrTransient, Message: "handler returned status failure without an error"}
	}
	if res.Status == protocol.TaskSuccess && s.info.OutputSchema != nil {
		doc, err := jsonDoc(res.Data)
		if err == nil {
			err = validateJSON(doc, s.info.OutputSchema, "data")
		}
		if err != nil {
			return w.failure(t, protocol.ErrContractViolation, "Local contract violation: "+err.Error())
		}
	}
	if res.Status != protocol.TaskFailure {
		if err := w.storeOutputs(ctx, t, &res); err != nil {
			if ctx.Err() != nil {
				return w.interrupted(t, ctx, err)
			}
			failed := w.baseResult(t)
			failed.Status, failed.Error, failed.Metadata = protocol.TaskFailure, toWireError(err), res.Metadata
			return failed
		}
	}
	return w.checkJSON(t, res)
}

// interrupted is the result of a task whose context ended early: cancelled
// by the orchestrator or at shutdown, or past its deadline.
func (w *Worker) interrupted(t *Task, ctx context.Context, err error) protocol.TaskResult {
	cause := context.Cause(ctx)
	if errors.Is(cause, errCancelled) || errors.Is(cause, errShutdown) {
		return w.cancelledResult(t)
	}
	if err == nil {
		err = ctx.Err()
	}
	res := w.baseResult(t)
	res.Status = protocol.TaskFailure
	res.Error = toWireError(err)
	return res
}

// checkJSON replaces a result whose data cannot be sent with a failure.
func (w *Worker) checkJSON(t *Task, res protocol.TaskResult) protocol.TaskResult {
	if _, err := json.Marshal(res); err != nil {
		return w.failure(t, protocol.ErrPermanent, "task result is not JSON: "+err.Error())
	}
	return res
}

func jsonDoc(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeJSON(raw)
}

// call runs a handler, turning a panic into a transient error.
func call(ctx context.Context, h Handler, t *Task) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.Logger().Error("handler panicked", "panic", r, "stack", string(debug.Stack()))
			res, err = Result{}, &TaskError{Code: protocol.ErrTransient, Message: fmt.Sprintf("panic: %v", r)}
		}
	}()
	return h(ctx, t)
}
