package history

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RecorderOptions tune a Recorder. Zero fields take the defaults.
type RecorderOptions struct {
	// Buffer is how many events may wait to be written; a Record beyond it
	// blocks until there is room (default 10000).
	Buffer int
	// BatchSize is the most events written in one transaction (default 500).
	BatchSize int
	// MaxDelay is the longest a recorded event waits for more events to
	// share its batch (default 100ms). Flush and RecordSync do not wait.
	MaxDelay time.Duration
	// WriteTimeout bounds one Append (default 30s).
	WriteTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a batch
	// that failed (defaults 50ms and 5s). A batch is retried until it is
	// written or the Recorder is closed.
	RetryMin, RetryMax time.Duration
	// Logger receives write failures (default slog.Default()).
	Logger *slog.Logger
}

func (o RecorderOptions) withDefaults() RecorderOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Buffer, 10000)
	def(&o.BatchSize, 500)
	defDur(&o.MaxDelay, 100*time.Millisecond)
	defDur(&o.WriteTimeout, 30*time.Second)
	defDur(&o.RetryMin, 50*time.Millisecond)
	defDur(&o.RetryMax, 5*time.Second)
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RecorderStats are counters of a Recorder since it started.
type RecorderStats struct {
	Recorded     uint64 // events accepted by Record and RecordSync
	Written      uint64 // events written (including ones already stored)
	Rejected     uint64 // events the store refused as invalid (logged, not written)
	Batches      uint64 // successful Appends
	Failures     uint64 // failed Appends (each retried)
	BlockedWaits uint64 // Records that found the buffer full and waited
	Queued       int    // events waiting now
}

// Recorder writes events to a Store in batches, off the caller's path. It
// owns one goroutine, started by NewRecorder and stopped by Close. It does
// not close the Store.
//
// Nothing recorded is dropped: a full buffer blocks Record, and a failed
// write is retried with backoff until it succeeds or Close gives up (then
// Close reports how many events were not written). The only events not
// written are those the store refuses as invalid (ErrInvalidEvent); they are
// logged and counted.
type Recorder struct {
	store Store
	opts  RecorderOptions
	now   func() time.Time

	queue chan item

	// sendMu orders sends against Close: Record sends under the read lock,
	// Close sets closed under the write lock, so no event can land in the
	// queue after the stop marker.
	sendMu sync.RWMutex
	closed bool

	closeOnce sync.Once
	abortOnce sync.Once
	sealed    chan struct{} // closed once closed is set: no more sends
	abort     chan struct{} // closed when Close gives up waiting
	done      chan struct{} // closed when the writer goroutine returns

	unwritten atomic.Int64 // events left unwritten when the writer was aborted
	stats     struct {
		recorded, written, rejected, batches, failures, blocked atomic.Uint64
	}
}

type itemKind int

const (
	itemEvent itemKind = iota
	itemBarrier
	itemStop
)

// item is an entry of the queue: an event, or a marker that the writer
// answers on ack once everything before it is written.
type item struct {
	kind itemKind
	ev   Event
	ack  chan error // buffered(1); nil for a plain Record
}

// NewRecorder starts a Recorder writing to s.
func NewRecorder(s Store, opts RecorderOptions) *Recorder {
	opts = opts.withDefaults()
	r := &Recorder{
		store: s, opts: opts, now: time.Now,
		queue:  make(chan item, opts.Buffer),
		sealed: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// Record queues an event and returns; the event is written within about
// MaxDelay. It blocks while the buffer is full, until there is room, ctx is
// done or the Recorder is closed. Record encodes the event before it
// returns: later changes to ev.Detail or ev.Job are not seen. An empty ID
// gets a new UUID and a zero Time the current time. Errors: ErrInvalidEvent,
// ErrClosed, or ctx's error; in every error case the event was not queued.
func (r *Recorder) Record(ctx context.Context, ev Event) error {
	_, err := r.enqueue(ctx, itemEvent, ev, false)
	return err
}

// RecordSync records an event and waits until it is written. A nil error
// acknowledges the event: it is durable. On ctx's error the event may still
// be written later.
func (r *Recorder) RecordSync(ctx context.Context, ev Event) error {
	ack, err := r.enqueue(ctx, itemEvent, ev, true)
	if err != nil {
		return err
	}
	return r.wait(ctx, ack)
}

// Flush waits until every event recorded before it was called is written
// (or refused as invalid, which is logged).
func (r *Recorder) Flush(ctx context.Context) error {
	ack, err := r.enqueue(ctx, itemBarrier, Event{}, true)
	if err != nil {
		return err
	}
	return r.wait(ctx, ack)
}

// Close stops accepting events, writes every event recorded before it, and
// stops the writer goroutine. Records waiting for room when Close is called
// are let in and written too. When ctx ends first, Close stops the writer,
// and returns an error that counts the events left unwritten. Close may be
// called more than once.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() { go r.stop() })
	select {
	case <-r.done:
	case <-ctx.Done():
		r.abortOnce.Do(func() { close(r.abort) })
		<-r.done
	}
	if n := r.unwritten.Load(); n > 0 {
		cause := context.Cause(ctx)
		if cause == nil { // a later Close than the one that gave up
			cause = ErrClosed
		}
		return fmt.Errorf("history: close: %d events not written: %w", n, cause)
	}
	return nil
}

// Stats returns the Recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	return RecorderStats{
		Recorded: r.stats.recorded.Load(), Written: r.stats.written.Load(),
		Rejected: r.stats.rejected.Load(), Batches: r.stats.batches.Load(),
		Failures: r.stats.failures.Load(), BlockedWaits: r.stats.blocked.Load(),
		Queued: len(r.queue),
	}
}

// stop puts the stop marker behind everything recorded so far.
func (r *Recorder) stop() {
	r.sendMu.Lock()
	r.closed = true
	r.sendMu.Unlock()
	close(r.sealed)
	select {
	case r.queue <- item{kind: itemStop}:
	case <-r.abort:
	}
}

func (r *Recorder) enqueue(ctx context.Context, kind itemKind, ev Event, sync bool) (chan error, error) {
	if kind == itemEvent {
		var err error
		if ev, err = prepare(ev, r.now()); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it := item{kind: kind, ev: ev}
	if sync {
		it.ack = make(chan error, 1)
	}
	r.sendMu.RLock()
	defer r.sendMu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	select {
	case r.queue <- it:
	default:
		r.stats.blocked.Add(1)
		select {
		case r.queue <- it:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.abort:
			return nil, ErrClosed
		}
	}
	if kind == itemEvent {
		r.stats.recorded.Add(1)
	}
	return it.ack, nil
}

func (r *Recorder) wait(ctx context.Context, ack chan error) error {
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
