package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// txn collects what one job write does besides the write itself: store
// effects committed with it, and events released only once it succeeded.
// A write retried after a version conflict starts a new txn.
type txn struct {
	now    time.Time
	fx     store.Effects
	events []Event
	// cands are the dispatch candidates, read once per txn by place.
	cands     []dispatch.Candidate
	candsRead bool
	// needAll says the change needs every part of the job (it ends the job,
	// say, and must withdraw every outstanding task) but the txn read only
	// some: mutate runs it again on a whole read.
	needAll bool
	// mayHand lets place hand tasks to polls waiting here (handoffs), for
	// the commits that settle them.
	mayHand  bool
	handoffs []handoff
}

// handoff is a task handed at its dispatch to a poll of its worker.
type handoff struct {
	poll    *subscription
	payload *protocol.TaskPayload
}

// absorb adds to t what step, a txn run on a copy of the same job, did:
// its effects, conditions, events and hand-offs.
func (t *txn) absorb(step *txn) {
	fx, s := &t.fx, &step.fx
	fx.Claims = append(fx.Claims, s.Claims...)
	fx.Onces = append(fx.Onces, s.Onces...)
	fx.Rewards = append(fx.Rewards, s.Rewards...)
	fx.DoneReady = fx.DoneReady || s.DoneReady
	fx.Create = append(fx.Create, s.Create...)
	fx.Ready = append(fx.Ready, s.Ready...)
	fx.Enqueue = append(fx.Enqueue, s.Enqueue...)
	fx.Hand = append(fx.Hand, s.Hand...)
	fx.Remove = append(fx.Remove, s.Remove...)
	fx.Timers = append(fx.Timers, s.Timers...)
	fx.Cancel = append(fx.Cancel, s.Cancel...)
	fx.Events = append(fx.Events, s.Events...)
	t.events = append(t.events, step.events...)
	t.handoffs = append(t.handoffs, step.handoffs...)
}

// settle gives the polls reserved by t their tasks when t was committed,
// or nil (they look again) when it was not. Settled twice, the second
// settles nothing.
func (t *txn) settle(committed bool) {
	if t == nil {
		return
	}
	for _, h := range t.handoffs {
		if committed {
			h.poll.handed <- h.payload
		} else {
			h.poll.handed <- nil
		}
	}
	t.handoffs = nil
}

// wantAll asks for a whole read when j is partial; it reports whether j is
// whole already.
func (t *txn) wantAll(j *store.Job) bool {
	if !j.Loaded.All {
		t.needAll = true
	}
	return j.Loaded.All
}

func (t *txn) emit(ev Event) {
	ev.Time = t.now
	t.events = append(t.events, ev)
}

// errSkip makes mutate write nothing and return no error.
var errSkip = errors.New("nothing to change")

// mutate applies fn to the current version of a job, read whole, and
// commits it, retrying from a fresh read when another writer got there
// first. fn may return errSkip to leave the job alone. Events are released
// after the commit.
func (e *Engine) mutate(ctx context.Context, id string, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	return e.mutateFrom(ctx, id, nil, fn)
}

// mutateFrom is mutate starting from a copy of the job the caller has just
// read (nil: read it), which saves a store round trip when nobody wrote
// the job meanwhile; the version check catches it when somebody did.
func (e *Engine) mutateFrom(ctx context.Context, id string, first *store.Job, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	return e.mutateParts(ctx, id, first, nil, fn)
}

// mutateParts is mutate reading the tasks named only (all parts when
// taskIDs is nil), starting from first when given.
func (e *Engine) mutateParts(ctx context.Context, id string, first *store.Job, taskIDs []string, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	lock, err := e.locks.acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	whole := taskIDs == nil
	// spare is the whole copy behind a view that led to no write: fn never
	// saw it, so it is still good if the store's job has its version.
	var spare *store.Job
	var t *txn
	defer func() { t.settle(false) }() // unless committed
	for attempt := 0; ; attempt++ {
		j, err := first, error(nil)
		guess := false        // j is (a view of) the copy kept since this process's last write
		var behind *store.Job // the whole copy behind a view
		if attempt == 0 && j == nil {
			j, behind = e.fromRecent(id, taskIDs)
			guess = j != nil
		}
		switch {
		case j != nil && attempt == 0:
		case whole:
			j, err = e.store.GetJob(ctx, id)
		default:
			j, err = e.store.LoadJob(ctx, id, taskIDs...)
		}
		if err != nil {
			return nil, err
		}
		if spare != nil && !j.Loaded.All && spare.Version == j.Version {
			behind = spare // current: write on the read as on a view of it
		}
		spare = nil
		t.settle(false) // an attempt before this one
		t = &txn{now: e.now(), mayHand: true}
		err = fn(t, j)
		if guess && err == nil && t.needAll && behind != nil {
			// The change needs the whole job, and the copy behind the
			// view is that job at the same version: decide again on it
			// rather than on a read.
			j, behind = behind, nil
			j.Written() // all it holds is stored (see Job.Apply)
			t.settle(false)
			t = &txn{now: e.now(), mayHand: true}
			err = fn(t, j)
		}
		if guess && (err != nil || t.needAll) {
			spare = behind
			continue // decide again on the stored job
		}
		if t.needAll && !j.Loaded.All && attempt < 100 {
			whole = true // the same change on a whole read
			continue
		}
		if err != nil {
			if behind != nil {
				e.recent.keep(behind) // nothing written: still current
			}
			if errors.Is(err, errSkip) {
				return j, nil
			}
			return j, err
		}
		j.UpdatedAt = t.now
		if t.fx.Events, err = e.encodeEvents(t.events, j); err != nil {
			return nil, fmt.Errorf("save job %s: %w", id, err)
		}
		var changes store.PartChanges
		if behind != nil {
			changes = j.Changes()
		}
		err = e.placed.write(t.fx.Enqueue, func() error { return e.store.UpdateJob(ctx, j, t.fx) })
		if errors.Is(err, store.ErrConflict) && attempt < 100 {
			continue
		}
		if errors.Is(err, store.ErrNotHead) && behind != nil {
			e.recent.keep(behind) // nothing written: still current
		}
		if err != nil {
			return nil, fmt.Errorf("save job %s: %w", id, err)
		}
		e.keepWritten(j, behind, changes)
		e.committed(t, j)
		return j, nil
	}
}

// fromRecent returns the copy of job id kept since this process's last
// write as a read of taskIDs would find it (a view of the named tasks of
// a large job, with the whole copy behind it; all of it when taskIDs is
// nil), or nil when none is kept.
func (e *Engine) fromRecent(id string, taskIDs []string) (j, behind *store.Job) {
	kept := e.recent.take(id)
	switch {
	case kept == nil:
		return nil, nil
	case taskIDs != nil && kept.PartCount() > store.SmallJob:
		return kept.View(taskIDs...), kept // what LoadJob would read
	}
	kept.Written() // all it holds is stored (see Job.Apply)
	return kept, nil
}

// keepWritten keeps j, just written, as the job's copy: applied to the
// whole copy behind it when j is a view of it (changes: j's, taken before
// the write).
func (e *Engine) keepWritten(j, behind *store.Job, changes store.PartChanges) {
	if behind != nil {
		behind.Apply(j, changes)
		e.recent.keep(behind)
		return
	}
	e.recent.put(j)
}

// committed releases a successful txn's events to the in-process
// observer; the outbox got them with the commit.
func (e *Engine) committed(t *txn, j *store.Job) {
	t.settle(true)
	for _, ev := range t.events {
		e.cfg.OnEvent(ev)
	}
	if len(t.fx.Timers) > 0 {
		e.wakeTimers(slices.MinFunc(t.fx.Timers, func(a, b store.Timer) int { return a.At.Compare(b.At) }).At)
	}
}
