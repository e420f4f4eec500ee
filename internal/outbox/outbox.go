// Package outbox relays the events that job writes commit to the store's
// outbox (store.Outbox) to their consumers: the history writer, live
// WebSocket commands, and whoever else needs every event at least once.
//
// A shared consumer runs in one process of a deployment at a time (a store
// lock elects it) and keeps its cursor in the store, so that another process
// resumes where it stopped: every event is handled at least once, even when
// a process is killed. A local consumer runs in every process from the
// moment it starts, with its cursor in memory: it is for live reactions
// such as pushing a cancel command to the workers connected to this process.
//
// A consumer whose handler fails (its sink is down) retries the same batch
// with backoff and falls behind; job writes never wait for it. Entries that
// every shared consumer has handled are trimmed.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/ctxtime"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Handler handles a batch of entries, oldest first. An error makes the
// batch be handled again after a backoff, so handlers must be idempotent.
type Handler func(ctx context.Context, entries []store.OutboxEntry) error

// Options tune a Relay. Zero fields take the defaults.
type Options struct {
	Logger    *slog.Logger
	BatchSize int           // entries per batch (500)
	Wait      time.Duration // longest wait for new entries per read (1s)
	// Linger is how long a consumer lets entries gather after a batch
	// that was not full, before it reads again (10ms, at most Keep/2;
	// negative: none).
	// Under load it turns a read (and a cursor write) per commit into one
	// per few milliseconds; an event after a quiet spell still comes at
	// once, as the read that waits for it returns as soon as it is there.
	Linger time.Duration
	// Lease is how long a shared consumer's election lasts unless renewed;
	// another process takes over within about this long after one dies
	// (15s).
	Lease time.Duration
	// RetryMin and RetryMax bound the backoff after a failed batch (100ms, 10s).
	RetryMin, RetryMax time.Duration
	// TrimInterval is how often handled entries are trimmed (10s).
	TrimInterval time.Duration
	// Keep is how long entries stay for local consumers that lag, even
	// when every shared consumer has handled them (1m).
	Keep time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	def(&o.Wait, time.Second)
	if o.Linger == 0 {
		o.Linger = 10 * time.Millisecond
	}
	def(&o.Lease, 15*time.Second)
	def(&o.RetryMin, 100*time.Millisecond)
	def(&o.RetryMax, 10*time.Second)
	def(&o.TrimInterval, 10*time.Second)
	def(&o.Keep, time.Minute)
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	// A local consumer that lingered past Keep could find its entries
	// trimmed.
	o.Linger = min(o.Linger, o.Keep/2)
	return o
}

// Relay runs consumers of one store's outbox. Add consumers, then Run.
type Relay struct {
	store store.Store
	opts  Options

	mu        sync.Mutex
	consumers []*consumer
	running   bool
	begun     bool // the local consumers have their start (Begin)
}

type consumer struct {
	name   string
	shared bool
	handle Handler

	mu     sync.Mutex
	cursor string // last entry handled (local consumers, and a shared one while elected)
	held   bool   // this process is the elected shared consumer
}

func (c *consumer) position() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor, c.held
}

func (c *consumer) setPosition(cursor string, held bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cursor, c.held = cursor, held
}

// New returns a Relay over s.
func New(s store.Store, opts Options) *Relay {
	return &Relay{store: s, opts: opts.withDefaults()}
}

// Shared adds a consumer that one process of the deployment runs at a time,
// with its cursor in the store. Every process must add the same shared
// consumers: entries are trimmed once all of them have handled them.
func (r *Relay) Shared(name string, h Handler) { r.add(&consumer{name: name, shared: true, handle: h}) }

// Local adds a consumer that this process runs on every entry appended from
// Begin (or Run) on. It is for live reactions; a batch it fails is logged
// and skipped. The local consumers of a Relay share its reads of the
// outbox: each batch goes to each of them in the order they were added.
func (r *Relay) Local(name string, h Handler) { r.add(&consumer{name: name, handle: h}) }

func (r *Relay) add(c *consumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.begun {
		panic("outbox: add consumers before Begin and Run")
	}
	r.consumers = append(r.consumers, c)
}

// Begin starts the local consumers at the end of the outbox as it is now:
// they see every entry appended after Begin returns. A process calls it
// before it acts on what they react to (before its API answers, say);
// Run, which may start some time later, begins them itself otherwise.
func (r *Relay) Begin(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.begun {
		return nil
	}
	start, err := r.store.LastEventID(ctx)
	if err != nil {
		return fmt.Errorf("outbox: find its end: %w", err)
	}
	for _, c := range r.consumers {
		if !c.shared {
			c.setPosition(start, true)
		}
	}
	r.begun = true
	return nil
}

// Run relays entries to every consumer and trims handled entries until ctx
// ends; then it returns once every goroutine it started has stopped.
func (r *Relay) Run(ctx context.Context) {
	r.mu.Lock()
	r.running = true
	consumers, begun := r.consumers, r.begun
	r.mu.Unlock()
	if !begun {
		if _, err := r.retryUntil(ctx, func() (string, error) { return "", r.Begin(ctx) }); err != nil {
			return // ctx ended
		}
	}
	var wg sync.WaitGroup
	var locals []*consumer
	for _, c := range consumers {
		if c.shared {
			wg.Go(func() { r.runShared(ctx, c) })
			continue
		}
		locals = append(locals, c)
	}
	if len(locals) > 0 {
		wg.Go(func() { r.runLocals(ctx, locals) })
	}
	wg.Go(func() { r.trimLoop(ctx) })
	wg.Wait()
}

// retryUntil calls fn until it succeeds or ctx ends, with backoff.
func (r *Relay) retryUntil(ctx context.Context, fn func() (string, error)) (string, error) {
	delay := r.opts.RetryMin
	for {
		v, err := fn()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.opts.Logger.Warn("outbox: store not answering", "error", err)
		if !ctxtime.Sleep(ctx, delay) {
			return "", ctx.Err()
		}
		delay = min(delay*2, r.opts.RetryMax)
	}
}

// runLocals reads the outbox once for every local consumer: they all begin
// at the same position (Begin) and move on together, each batch handed to
// each of them in turn, so that a process reads every entry once however
// many live reactions it has.
func (r *Relay) runLocals(ctx context.Context, locals []*consumer) {
	cursor, _ := locals[0].position()
	for ctx.Err() == nil {
		entries, err := r.store.ReadEvents(ctx, cursor, r.opts.BatchSize, r.opts.Wait)
		if err != nil {
			r.opts.Logger.Warn("outbox: read failed", "consumers", "local", "error", err)
			ctxtime.Sleep(ctx, r.opts.RetryMin)
			continue
		}
		if len(entries) == 0 {
			continue
		}
		cursor = entries[len(entries)-1].ID
		for _, c := range locals {
			if err := c.handle(ctx, entries); err != nil && ctx.Err() == nil {
				r.opts.Logger.Warn("outbox: local consumer skipped a batch", "consumer", c.name, "entries", len(entries), "error", err)
			}
			c.setPosition(cursor, true)
		}
		r.linger(ctx, len(entries))
	}
}

// linger lets entries gather after a batch of n that was not full.
func (r *Relay) linger(ctx context.Context, n int) {
	if n > 0 && n < r.opts.BatchSize && r.opts.Linger > 0 {
		ctxtime.Sleep(ctx, r.opts.Linger)
	}
}

func (r *Relay) cursorKey(name string) string { return "outbox:cursor:" + name }

// runShared takes part in the election of the consumer, and consumes while
// elected.
func (r *Relay) runShared(ctx context.Context, c *consumer) {
	retry := r.opts.Lease / 3
	for ctx.Err() == nil {
		lock, ok, err := r.store.AcquireLock(ctx, "outbox:"+c.name, r.opts.Lease)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.opts.Logger.Warn("outbox: election failed", "consumer", c.name, "error", err)
			}
		case ok:
			r.consumeElected(ctx, c, lock)
			continue
		}
		ctxtime.Sleep(ctx, retry)
	}
}

// consumeElected consumes while this process holds the consumer's lock. A
// side goroutine renews the lock and ends the turn when it is lost.
func (r *Relay) consumeElected(ctx context.Context, c *consumer, lock store.Lock) {
	turn, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		defer cancel()
		t := time.NewTicker(r.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-turn.Done():
				// Let the next process take over at once.
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer rcancel()
				_ = r.store.ReleaseLock(rctx, lock)
				return
			case <-t.C:
				ok, err := r.store.RefreshLock(turn, lock, r.opts.Lease)
				if err == nil && !ok {
					r.opts.Logger.Warn("outbox: lost the election", "consumer", c.name)
					return
				}
			}
		}
	})
	cursor, err := r.store.GetValue(turn, r.cursorKey(c.name))
	if errors.Is(err, store.ErrNotFound) {
		cursor, err = "", nil
	}
	if err != nil {
		if turn.Err() == nil {
			r.opts.Logger.Warn("outbox: cursor not readable", "consumer", c.name, "error", err)
			ctxtime.Sleep(turn, r.opts.RetryMin)
		}
		return
	}
	c.setPosition(cursor, true)
	defer func() { c.setPosition(cursor, false) }()
	delay := r.opts.RetryMin
	for turn.Err() == nil {
		entries, err := r.store.ReadEvents(turn, cursor, r.opts.BatchSize, r.opts.Wait)
		if err == nil && len(entries) > 0 {
			if err = c.handle(turn, entries); err == nil {
				next := entries[len(entries)-1].ID
				if err = r.store.PutValue(turn, r.cursorKey(c.name), next, 0); err == nil {
					cursor = next
					c.setPosition(cursor, true)
				}
			}
		}
		if err == nil {
			delay = r.opts.RetryMin
			r.linger(turn, len(entries))
			continue
		}
		if turn.Err() != nil {
			return
		}
		r.opts.Logger.Warn("outbox: batch failed, retrying", "consumer", c.name, "after", cursor, "retry_in", delay, "error", err)
		ctxtime.Sleep(turn, delay)
		delay = min(delay*2, r.opts.RetryMax)
	}
}

// Cursor returns the last entry a consumer has handled, wherever it runs
// ("" when none yet).
func (r *Relay) Cursor(ctx context.Context, name string) (string, error) {
	c := r.find(name)
	if c == nil {
		return "", fmt.Errorf("outbox: no consumer %q", name)
	}
	if cursor, held := c.position(); held || !c.shared {
		return cursor, nil
	}
	cursor, err := r.store.GetValue(ctx, r.cursorKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return cursor, err
}

func (r *Relay) find(name string) *consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.consumers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// CaughtUp waits until the named consumer has handled every entry appended
// before the call, or ctx ends.
func (r *Relay) CaughtUp(ctx context.Context, name string) error {
	target, err := r.store.LastEventID(ctx)
	if err != nil {
		return err
	}
	for {
		cursor, err := r.Cursor(ctx, name)
		if err != nil {
			return err
		}
		if store.CompareEventIDs(cursor, target) >= 0 {
			return nil
		}
		if !ctxtime.Sleep(ctx, 10*time.Millisecond) {
			return fmt.Errorf("outbox: consumer %s is behind: %w", name, ctx.Err())
		}
	}
}

// Lag is how many kept entries a consumer has not handled yet.
func (r *Relay) Lag(ctx context.Context, name string) (int64, error) {
	cursor, err := r.Cursor(ctx, name)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		entries, err := r.store.ReadEvents(ctx, cursor, 1000, 0)
		if err != nil || len(entries) == 0 {
			return n, err
		}
		n += int64(len(entries))
		cursor = entries[len(entries)-1].ID
	}
}

// trimLoop drops entries every shared consumer has handled and that are
// older than Keep.
func (r *Relay) trimLoop(ctx context.Context) {
	t := time.NewTicker(r.opts.TrimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.trim(ctx); err != nil && ctx.Err() == nil {
				r.opts.Logger.Warn("outbox: trim failed", "error", err)
			}
		}
	}
}

func (r *Relay) trim(ctx context.Context) error {
	// Entries before this id are older than Keep.
	before := strconv.FormatInt(time.Now().Add(-r.opts.Keep).UnixMilli(), 10) + "-0"
	r.mu.Lock()
	consumers := r.consumers
	r.mu.Unlock()
	for _, c := range consumers {
		if !c.shared {
			continue
		}
		cursor, err := r.Cursor(ctx, c.name)
		if err != nil {
			return err
		}
		if cursor == "" {
			return nil // it has handled nothing yet
		}
		// Trimming keeps the cursor's own entry: harmless, and the next
		// read after it still finds its place. Of a sharded outbox's
		// positions, the earliest id of each shard.
		before = store.MinEventID(cursor, before)
	}
	return r.store.TrimEvents(ctx, before)
}
