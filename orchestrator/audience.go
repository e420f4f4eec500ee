package orchestrator

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// An audience tells whether a console page listens to job events in any
// process of a deployment on a shared store. Without a history database,
// job events go to the outbox for consoles alone: while no page is open
// anywhere, job writes leave them out (keepEvent), which on Redis saves
// six outbox entries per one-task job and their reading.
//
// A process whose console has a live stream open keeps audienceKey alive
// in the store; every process reads it each audienceRefresh. A page that
// opens is heard by the other processes within about two refreshes: the
// console tells it to reload once after catchUp, for what they wrote
// before they knew.
type audience struct {
	store  store.Store
	local  func() bool // a page listens in this process
	others atomic.Bool // a page listens somewhere, as last read
	wake   chan struct{}
}

const (
	audienceKey     = "console:audience"
	audienceRefresh = time.Second
	audienceTTL     = 5 * audienceRefresh
	// catchUp covers a write to the key (at once when a page opens) and a
	// read by every other process (each refresh), with time to spare.
	catchUp = 3 * audienceRefresh
)

func newAudience(s store.Store, local func() bool) *audience {
	a := &audience{store: s, local: local, wake: make(chan struct{}, 1)}
	a.others.Store(true) // until the first read says otherwise
	return a
}

// listening reports whether a page may listen somewhere.
func (a *audience) listening() bool { return a.others.Load() || a.local() }

// opened tells the audience that a page opened in this process; it never
// blocks.
func (a *audience) opened() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run keeps the audience current until ctx ends.
func (a *audience) run(ctx context.Context) {
	t := time.NewTicker(audienceRefresh)
	defer t.Stop()
	for {
		a.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.wake:
		}
	}
}

func (a *audience) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, audienceRefresh)
	defer cancel()
	var err error
	if a.local() {
		err = a.store.PutValue(ctx, audienceKey, "1", audienceTTL)
	} else if _, err = a.store.GetValue(ctx, audienceKey); errors.Is(err, store.ErrNotFound) {
		a.others.Store(false)
		return
	}
	// Found, written, or not known (the store does not answer): keep
	// writing events rather than leave a page without news.
	a.others.Store(true)
}
