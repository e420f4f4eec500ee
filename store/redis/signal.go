package redis

import (
	"sync"
	"time"
)

// With several shards, readers that span them (ReadEvents, DueTimers,
// NextTimer) would otherwise ask every shard each time. Instead a commit
// that appends outbox events or adds timers publishes its shard's index on
// the shard's signal channel (AddTimers and AppendEvents do too; SPUBLISH,
// which a Cluster keeps on the shard's master, where a PUBLISH would go to
// every node and was seen to delay the other channels' messages), and
// each Store keeps, per shard, what it last read there: the outbox cursor
// after which the shard's stream was empty, the earliest timer. What it
// knows of a shard holds until a signal for that shard comes (from any
// process, or from the Store's own commit before it returns) or
// shardFallback passes, so a lost signal only delays. With one shard none
// of this is used: a commit publishes nothing more, ReadEvents blocks in
// XREAD and the timers are one sorted set.
const shardFallback = 2 * time.Second

// shardWatch is what one Store knows of its shards' outbox streams and
// timers.
type shardWatch struct {
	mu     sync.Mutex
	gen    []uint64      // per shard: signals seen
	wake   chan struct{} // closed (and replaced) at each signal
	empty  []eventMark   // per shard: the stream ends at this cursor
	timers []timerMark   // per shard: its earliest timer
}

// eventMark says that a shard's stream held nothing after id when read at
// gen.
type eventMark struct {
	id  string
	gen uint64
	at  time.Time
}

// timerMark says when a shard's earliest timer is due (none: no timer),
// as read at gen.
type timerMark struct {
	set  bool
	none bool
	due  float64 // score (µs)
	gen  uint64
	at   time.Time
}

func newShardWatch(n int) *shardWatch {
	return &shardWatch{gen: make([]uint64, n), wake: make(chan struct{}),
		empty: make([]eventMark, n), timers: make([]timerMark, n)}
}

// signal records news in shard k (every shard when k < 0) and wakes the
// readers waiting for any.
func (w *shardWatch) signal(k int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k >= len(w.gen) {
		return
	}
	if k < 0 {
		for i := range w.gen {
			w.gen[i]++
		}
	} else {
		w.gen[k]++
	}
	close(w.wake)
	w.wake = make(chan struct{})
}

// snapshot returns the signal counts and a channel closed at the next
// signal: a reader takes it before it reads, so that nothing signalled
// after the read goes unnoticed.
func (w *shardWatch) snapshot() ([]uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uint64(nil), w.gen...), w.wake
}

// eventsAfter reports whether shard k may hold outbox entries after id.
func (w *shardWatch) eventsAfter(k int, id string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.empty[k]
	return m.id != id || m.gen != w.gen[k] || now.Sub(m.at) >= shardFallback
}

// noEventsAfter records that shard k's stream ended at id when read at gen.
func (w *shardWatch) noEventsAfter(k int, id string, gen uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.empty[k] = eventMark{id: id, gen: gen, at: now}
}

// nextTimer returns what the Store knows of shard k's earliest timer:
// known is false when it must be read.
func (w *shardWatch) nextTimer(k int, now time.Time) (due float64, none, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.timers[k]
	if !m.set || m.gen != w.gen[k] || now.Sub(m.at) >= shardFallback {
		return 0, false, false
	}
	return m.due, m.none, true
}

// timerRead records shard k's earliest timer as read at gen.
func (w *shardWatch) timerRead(k int, due float64, none bool, gen uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timers[k] = timerMark{set: true, none: none, due: due, gen: gen, at: now}
}

// forgetTimers drops what is known of shard k's timers (DueTimers moved
// some).
func (w *shardWatch) forgetTimers(k int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timers[k] = timerMark{}
}
