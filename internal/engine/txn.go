package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch"
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
}

func (t *txn) emit(ev Event) {
	ev.Time = t.now
	t.events = append(t.events, ev)
}

// errSkip makes mutate write nothing and return no error.
var errSkip = errors.New("nothing to change")

// mutate applies fn to the current version of a job and commits it,
// retrying from a fresh read when another writer got there first. fn may
// return errSkip to leave the job alone. Events are released after the
// commit.
func (e *Engine) mutate(ctx context.Context, id string, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	return e.mutateFrom(ctx, id, nil, fn)
}

// mutateFrom is mutate starting from a copy of the job the caller has just
// read (nil: read it), which saves a store round trip when nobody wrote
// the job meanwhile; the version check catches it when somebody did.
func (e *Engine) mutateFrom(ctx context.Context, id string, first *store.Job, fn func(t *txn, j *store.Job) error) (*store.Job, error) {
	release, err := e.locks.acquire(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	for attempt := 0; ; attempt++ {
		j, err := first, error(nil)
		if j == nil || attempt > 0 {
			j, err = e.store.GetJob(ctx, id)
		}
		if err != nil {
			return nil, err
		}
		t := &txn{now: e.now()}
		if err := fn(t, j); err != nil {
			if errors.Is(err, errSkip) {
				return j, nil
			}
			return j, err
		}
		j.UpdatedAt = t.now
		if t.fx.Events, err = e.encodeEvents(t.events, j); err != nil {
			return nil, fmt.Errorf("save job %s: %w", id, err)
		}
		err = e.store.UpdateJob(ctx, j, t.fx)
		if errors.Is(err, store.ErrConflict) && attempt < 100 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("save job %s: %w", id, err)
		}
		e.committed(t, j)
		return j, nil
	}
}

// committed releases a successful txn's events to the in-process
// observer; the outbox got them with the commit.
func (e *Engine) committed(t *txn, j *store.Job) {
	for _, ev := range t.events {
		e.cfg.OnEvent(ev)
	}
	if len(t.fx.Timers) > 0 {
		e.wakeTimers(slices.MinFunc(t.fx.Timers, func(a, b store.Timer) int { return a.At.Compare(b.At) }).At)
	}
}
