package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Writes of one task each (pickups, results, task timers) that reach a job
// while another write of it is in flight wait for it, and then go out
// together, as one commit: under a fan-out most writes of a job come while
// another is in flight (BENCHMARKS.md, "A fan-out's writes to one job as
// one commit"), and each would otherwise pay a read, a commit and a wait
// for the job's lock of its own.
//
// A batch decides each write in turn, on a copy of the job after the
// writes before it, exactly as the write would decide alone after them.
// Its conditions (claims, once-keys) and rewards all go with the commit
// (store.Effects): one that fails refuses the whole commit, and each write
// of the batch then runs again alone (mutateParts), to succeed or get its
// own error.

// batches holds, for each job with a write in flight in this process, the
// writes of one task waiting for it (none yet: an empty list).
type batches struct {
	mu   sync.Mutex
	jobs map[string][]*taskWrite
}

// taskWrite is one write of one task, waiting.
type taskWrite struct {
	ctx    context.Context
	taskID string
	fn     func(t *txn, j *store.Job) error
	done   chan writeOutcome // buffered: a batch never waits for its writer
}

// writeOutcome is what became of a write in a batch.
type writeOutcome struct {
	j   *store.Job
	err error
	// alone: not decided in the batch, or decided on a commit that did not
	// happen: the writer runs it alone.
	alone bool
}

// join registers a write of job id. With no write of the job in flight it
// returns nil, and the caller writes alone, then calls leave; otherwise
// the write waits for a batch.
func (b *batches) join(ctx context.Context, id, taskID string, fn func(t *txn, j *store.Job) error) *taskWrite {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jobs == nil {
		b.jobs = map[string][]*taskWrite{}
	}
	waiting, inFlight := b.jobs[id]
	if !inFlight {
		b.jobs[id] = nil
		return nil
	}
	w := &taskWrite{ctx: ctx, taskID: taskID, fn: fn, done: make(chan writeOutcome, 1)}
	b.jobs[id] = append(waiting, w)
	return w
}

// maxBatch bounds the writes of one commit, and so its size and the time
// its writers wait. The writes waiting for one job are its requests in
// flight, rarely more.
const maxBatch = 64

// next takes the writes waiting for job id, up to maxBatch, or ends its
// time in flight when none are.
func (b *batches) next(id string) []*taskWrite {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws := b.jobs[id]
	switch {
	case len(ws) == 0:
		delete(b.jobs, id)
		return nil
	case len(ws) > maxBatch:
		ws, b.jobs[id] = ws[:maxBatch:maxBatch], slices.Clone(ws[maxBatch:])
	default:
		b.jobs[id] = nil
	}
	return ws
}

// withdraw takes back a write no batch has taken yet; false when one has.
func (b *batches) withdraw(id string, w *taskWrite) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	waiting := b.jobs[id]
	i := slices.Index(waiting, w)
	if i < 0 {
		return false
	}
	b.jobs[id] = slices.Delete(waiting, i, i+1)
	return true
}

// mutateTask is mutate on a read of the job's header and one of its tasks
// (with its final status if it ended), so that a result, a pickup or a
// timer of one branch costs the same whatever the width of the fan-out.
// fn asks for a whole read (txn.wantAll) when it needs more. While another
// write of the job is in flight, the write waits for it and goes out in a
// batch with the others waiting (see batches).
func (e *Engine) mutateTask(ctx context.Context, id, taskID string, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	w := e.batches.join(ctx, id, taskID, fn)
	if w == nil {
		defer e.leave(id)
		return e.mutateParts(ctx, id, nil, []string{taskID}, fn)
	}
	var out writeOutcome
	select {
	case out = <-w.done:
	case <-ctx.Done():
		if e.batches.withdraw(id, w) {
			return nil, ctx.Err() // nothing written
		}
		// Taken by a batch: whether it is written is its outcome.
		out = <-w.done
	}
	if out.alone {
		return e.mutateParts(ctx, id, nil, []string{taskID}, fn)
	}
	return out.j, out.err
}

// leave ends a write of job id done alone; the writes that waited for it
// go out in batches, on a goroutine that lives while writes of the job
// wait for it. Each of a batch's store calls is bounded by claimTimeout.
func (e *Engine) leave(id string) {
	ws := e.batches.next(id)
	if ws == nil {
		return
	}
	go func() {
		for ; ws != nil; ws = e.batches.next(id) {
			e.writeBatch(id, ws)
		}
	}()
}

// writeBatch writes the writes of one batch, and tells each its outcome.
func (e *Engine) writeBatch(id string, ws []*taskWrite) {
	// The batch writes for all its writers, whatever becomes of the first
	// one's request; it carries that one's values (its trace). Its store
	// calls are bounded (see commitBatch), not the writes' decisions, which
	// may run blueprint handlers, as a write alone would.
	ctx := context.WithoutCancel(ws[0].ctx)
	defer func() {
		// A panic outside the writes' decisions (an event observer's, say):
		// a writer's own goroutine would have met it (and an HTTP server
		// recovered it); here it would end the process.
		if r := recover(); r != nil {
			e.log.Error("job write panicked", "job", id, "panic", r, "stack", string(debug.Stack()))
			for _, w := range ws {
				select {
				case w.done <- writeOutcome{err: fmt.Errorf("write job %s: panic: %v", id, r)}:
				default: // told already
				}
			}
		}
	}()
	if len(ws) == 1 {
		j, err := e.mutateParts(ctx, id, nil, []string{ws[0].taskID}, ws[0].fn)
		ws[0].done <- writeOutcome{j: j, err: err}
		return
	}
	outs := e.commitBatch(ctx, id, ws)
	for i, w := range ws {
		w.done <- outs[i]
	}
}

// commitBatch decides each write of a batch on the job after the ones
// before it, and commits those that change it as one write.
func (e *Engine) commitBatch(ctx context.Context, id string, ws []*taskWrite) []writeOutcome {
	outs := make([]writeOutcome, len(ws))
	alone := func(which []int) []writeOutcome {
		for _, i := range which {
			outs[i] = writeOutcome{alone: true}
		}
		return outs
	}
	allAlone := func() []writeOutcome {
		for i := range outs {
			outs[i] = writeOutcome{alone: true}
		}
		return outs
	}
	readCtx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	lock, err := e.locks.acquire(readCtx, id)
	if err != nil {
		return allAlone()
	}
	defer lock.release()

	ids := make([]string, 0, len(ws))
	for _, w := range ws {
		if !slices.Contains(ids, w.taskID) {
			ids = append(ids, w.taskID)
		}
	}
	// As mutateParts reads: the copy kept since this process's last write
	// (a guess, checked by the commit's version), or the store's.
	j, behind := e.fromRecent(id, ids)
	guess := j != nil
	if !guess {
		if j, err = e.store.LoadJob(readCtx, id, ids...); err != nil {
			return allAlone()
		}
	}

	curr := j
	merged := &txn{now: e.now(), mayHand: true}
	var t *txn // the write being decided
	defer func() {
		// Unless committed (or a decision panicked): the polls reserved
		// for hand-offs look again.
		t.settle(false)
		merged.settle(false)
	}()
	var written, skipped []int
	for i, w := range ws {
		t = &txn{now: merged.now, mayHand: true}
		next := forWrite(curr, w.taskID)
		err := e.decide(id, w, t, next)
		switch {
		case err == nil && !t.needAll && !sharesOnce(merged, t):
			curr = afterWrite(curr, next)
			merged.absorb(t)
			t.handoffs = nil // merged's now
			written = append(written, i)
		case errors.Is(err, errSkip) && !t.needAll:
			// Final once what it was decided on is known to be stored.
			skipped = append(skipped, i)
		case errors.Is(err, errPanicked):
			outs[i] = writeOutcome{err: err}
		default:
			outs[i] = writeOutcome{alone: true}
		}
		t.settle(false)
	}
	if len(written) == 0 {
		if guess {
			return alone(skipped)
		}
		for _, i := range skipped {
			outs[i] = writeOutcome{j: curr.Clone()} // not the copy kept below
		}
		if j.Loaded.All {
			e.recent.keep(j) // nothing written: still current
		}
		return outs
	}

	curr.UpdatedAt = merged.now
	decided := append(written, skipped...)
	if merged.fx.Events, err = e.encodeEvents(merged.events, curr); err != nil {
		return alone(decided)
	}
	var changes store.PartChanges
	if behind != nil {
		changes = curr.Changes()
	}
	writeCtx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	err = e.placed.write(merged.fx.Enqueue, func() error { return e.store.UpdateJob(writeCtx, curr, merged.fx) })
	if err != nil {
		if behind != nil && (errors.Is(err, store.ErrNotHead) || errors.Is(err, store.ErrOnceTaken)) {
			e.recent.keep(behind) // nothing written: still current
		}
		e.log.Debug("batch write refused: its writes run alone", "job", id, "writes", len(written), "error", err)
		return alone(decided)
	}
	e.keepWritten(curr, behind, changes)
	e.committed(merged, curr)
	for _, i := range decided {
		outs[i] = writeOutcome{j: curr}
	}
	return outs
}

// errPanicked marks a write whose decision panicked.
var errPanicked = errors.New("panicked")

// decide runs one write's decision. A panic in it (a bug) fails that write
// alone, as its writer's own goroutine would have met it, rather than the
// others and the batch's goroutine, and with it the process.
func (e *Engine) decide(id string, w *taskWrite, t *txn, j *store.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("job write panicked", "job", id, "task", w.taskID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("write job %s, task %s: %w: %v", id, w.taskID, errPanicked, r)
		}
	}()
	return w.fn(t, j)
}

// forWrite returns what one write of a batch decides on, so that a write
// that fails leaves curr as it was: a copy of curr when it is whole (a
// small job, read whole as a write alone would read it), else the view of
// the write's one task that a write alone would read. Copying every task
// of the batch for each write would cost the square of its size.
func forWrite(curr *store.Job, taskID string) *store.Job {
	if curr.Loaded.All {
		return curr.Clone()
	}
	return curr.View(taskID)
}

// afterWrite returns curr after a write decided on next (forWrite's): next
// itself, or curr with next's header and part changes applied, still
// listing what the batch's read loaded, which its commit compares with.
func afterWrite(curr, next *store.Job) *store.Job {
	if curr.Loaded.All {
		return next
	}
	loaded := curr.Loaded
	curr.Apply(next, next.Changes())
	curr.Loaded = loaded
	return curr
}

// sharesOnce reports whether t sets a once-key the batch sets already: the
// commit would refuse both, so t runs alone after it.
func sharesOnce(batch, t *txn) bool {
	for _, o := range t.fx.Onces {
		if slices.ContainsFunc(batch.fx.Onces, func(b store.Once) bool { return b.Key == o.Key }) {
			return true
		}
	}
	return false
}
