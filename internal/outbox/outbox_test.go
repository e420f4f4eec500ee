package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/outbox"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// backends runs a test on the memory store and, when Redis is available,
// on two Redis stores sharing one prefix (two processes of a deployment).
func backends(t *testing.T, fn func(t *testing.T, stores func() store.Store)) {
	t.Run("memory", func(t *testing.T) {
		s := memory.New(memory.Options{})
		fn(t, func() store.Store { return s })
	})
	t.Run("redis", func(t *testing.T) {
		url := testenv.URL(t, testenv.RedisVar)
		prefix := fmt.Sprintf("outboxtest-%d-%d", time.Now().UnixNano(), prefixSeq.Add(1))
		fn(t, func() store.Store {
			s, err := redisstore.Open(context.Background(), redisstore.Options{URL: url, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

var prefixSeq atomic.Int64

func fastOptions() outbox.Options {
	return outbox.Options{BatchSize: 7, Wait: 50 * time.Millisecond, Lease: 300 * time.Millisecond,
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, TrimInterval: 20 * time.Millisecond, Keep: time.Millisecond}
}

func appendN(t *testing.T, s store.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.AppendEvents(context.Background(), "", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// collector records what a handler saw, and fails on demand.
type collector struct {
	mu      sync.Mutex
	seen    []int
	fails   int // batches still to fail
	batches int // batches handled
}

func (c *collector) handle(_ context.Context, entries []store.OutboxEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails > 0 {
		c.fails--
		return errors.New("sink down")
	}
	c.batches++
	for _, e := range entries {
		n, _ := strconv.Atoi(string(e.Data))
		c.seen = append(c.seen, n)
	}
	return nil
}

func (c *collector) distinct() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[int]int{}
	for _, n := range c.seen {
		m[n]++
	}
	return m
}

func run(t *testing.T, r *outbox.Relay) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// A shared consumer whose sink fails retries the batch: every event is
// handled, in order, none lost; the lag drops to zero and handled
// entries are trimmed.
func TestSharedConsumerRetriesAndTrims(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, stores func() store.Store) {
		s := stores()
		appendN(t, s, 0, 30)
		c := &collector{fails: 3}
		r := outbox.New(s, fastOptions())
		r.Shared("history", c.handle)
		run(t, r)
		appendN(t, s, 30, 20)
		testenv.WaitUntil(t, "50 events handled", 15*time.Second, func() bool { return len(c.distinct()) == 50 })
		c.mu.Lock()
		for i, n := range c.seen {
			if n != i {
				t.Fatalf("events out of order or repeated after a failed batch: %v", c.seen)
			}
		}
		c.mu.Unlock()
		ctx := context.Background()
		if err := r.CaughtUp(ctx, "history"); err != nil {
			t.Fatal(err)
		}
		if lag, err := r.Lag(ctx, "history"); err != nil || lag != 0 {
			t.Fatalf("lag = %d, %v", lag, err)
		}
		testenv.WaitUntil(t, "handled entries trimmed", 15*time.Second, func() bool {
			n, err := s.EventCount(ctx)
			return err == nil && n <= 1
		})
	})
}

// A consumer that is behind makes CaughtUp wait, boundedly.
func TestCaughtUpIsBounded(t *testing.T) {
	t.Parallel()
	s := memory.New(memory.Options{})
	c := &collector{fails: 1 << 30}
	r := outbox.New(s, fastOptions())
	r.Shared("history", c.handle)
	run(t, r)
	appendN(t, s, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.CaughtUp(ctx, "history"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CaughtUp with a failing sink: %v", err)
	}
	if lag, _ := r.Lag(context.Background(), "history"); lag != 3 {
		t.Fatalf("lag = %d, want 3", lag)
	}
	if n, _ := s.EventCount(context.Background()); n != 3 {
		t.Fatalf("unhandled entries were trimmed: %d left", n)
	}
}

// The cursor lives in the store: a relay that stops and one that starts
// later (another process) go on where it stopped; two relays at once
// elect one consumer, and the other takes over when it goes away.
func TestSharedConsumerResumesAndFailsOver(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, stores func() store.Store) {
		s1 := stores()
		a := &collector{}
		r1 := outbox.New(s1, fastOptions())
		r1.Shared("history", a.handle)
		stop1 := run(t, r1)
		appendN(t, s1, 0, 10)
		testenv.WaitUntil(t, "first relay handles 10", 15*time.Second, func() bool { return len(a.distinct()) == 10 })

		s2 := stores()
		b := &collector{}
		r2 := outbox.New(s2, fastOptions())
		r2.Shared("history", b.handle)
		run(t, r2)
		appendN(t, s2, 10, 10)
		testenv.WaitUntil(t, "first relay handles 20", 15*time.Second, func() bool { return len(a.distinct()) == 20 })
		if n := len(b.distinct()); n != 0 {
			t.Fatalf("the second relay handled %d events while the first was elected", n)
		}
		stop1()
		appendN(t, s2, 20, 10)
		testenv.WaitUntil(t, "second relay takes over", 15*time.Second, func() bool { return len(b.distinct()) >= 10 })
		got := b.distinct()
		for i := 20; i < 30; i++ {
			if got[i] == 0 {
				t.Fatalf("event %d lost in the fail-over: %v", i, got)
			}
		}
		// At least once: only the last batch (7) may come again, if the
		// stop came between handling it and saving the cursor.
		for i := range 20 - 7 {
			if got[i] != 0 {
				t.Fatalf("event %d handled again although its batch was done: %v", i, got)
			}
		}
	})
}

// A local consumer sees what is appended after it starts, in every process.
func TestLocalConsumerSeesNewEvents(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, stores func() store.Store) {
		s1, s2 := stores(), stores()
		appendN(t, s1, 0, 5)
		a, b := &collector{}, &collector{}
		r1, r2 := outbox.New(s1, fastOptions()), outbox.New(s2, fastOptions())
		r1.Local("ws", a.handle)
		r2.Local("ws", b.handle)
		run(t, r1)
		run(t, r2)
		// Run positions local consumers before it returns control to its
		// goroutines; wait until both cursors are set.
		testenv.WaitUntil(t, "local consumers started", 15*time.Second, func() bool {
			c1, _ := r1.Cursor(context.Background(), "ws")
			c2, _ := r2.Cursor(context.Background(), "ws")
			return c1 != "" && c2 != ""
		})
		appendN(t, s1, 5, 5)
		for _, c := range []*collector{a, b} {
			testenv.WaitUntil(t, "5 new events", 15*time.Second, func() bool { return len(c.distinct()) == 5 })
			for n := range c.distinct() {
				if n < 5 {
					t.Fatalf("local consumer saw event %d from before it started", n)
				}
			}
		}
	})
}

// A local consumer begun before Run sees the entries appended in between
// (Run may start well after the process began to act), none from before.
func TestBeginPositionsLocalConsumers(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, stores func() store.Store) {
		s := stores()
		appendN(t, s, 0, 3)
		got := &collector{}
		r := outbox.New(s, fastOptions())
		r.Local("live", got.handle)
		if err := r.Begin(context.Background()); err != nil {
			t.Fatal(err)
		}
		appendN(t, s, 3, 4) // before Run
		run(t, r)
		testenv.WaitUntil(t, "the 4 entries appended after Begin", 15*time.Second, func() bool { return len(got.distinct()) == 4 })
		for n := range got.distinct() {
			if n < 3 {
				t.Fatalf("local consumer saw entry %d from before Begin", n)
			}
		}
	})
}

// countedReads counts the outbox reads that reach a store, and those that
// found entries.
type countedReads struct {
	store.Store
	reads, found atomic.Int64
}

func (s *countedReads) ReadEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]store.OutboxEntry, error) {
	s.reads.Add(1)
	entries, err := s.Store.ReadEvents(ctx, after, limit, wait)
	if len(entries) > 0 {
		s.found.Add(1)
	}
	return entries, err
}

// The local consumers of a process share its reads: each batch read is
// handed to every one of them, and one that fails a batch costs the others
// nothing.
func TestLocalConsumersShareReads(t *testing.T) {
	t.Parallel()
	s := &countedReads{Store: memory.New(memory.Options{})}
	r := outbox.New(s, fastOptions())
	a, b, failing := &collector{}, &collector{}, &collector{fails: 1}
	r.Local("a", a.handle)
	r.Local("b", b.handle)
	r.Local("failing", failing.handle)
	if err := r.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, 50)
	run(t, r)
	testenv.WaitUntil(t, "every event in a and b", 15*time.Second, func() bool { return len(a.distinct()) == 50 && len(b.distinct()) == 50 })
	testenv.WaitUntil(t, "the failing consumer to go on", 15*time.Second, func() bool { return len(failing.distinct()) > 0 })
	found := s.found.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(a.batches) != found || int64(b.batches) != found {
		t.Fatalf("%d reads found entries; consumers handled %d and %d batches: want one read per batch for all", found, a.batches, b.batches)
	}
	for _, c := range []string{"a", "b", "failing"} {
		cur, err := r.Cursor(context.Background(), c)
		if err != nil || cur == "" {
			t.Fatalf("cursor of %s: %q, %v", c, cur, err)
		}
	}
}

// A consumer under a steady trickle of events (one every millisecond or
// so, as commits come under load) reads about once per Linger, not once
// per event (about 300 reads without it), and misses none.
func TestLingerGathersEntries(t *testing.T) {
	t.Parallel()
	s := &countedReads{Store: memory.New(memory.Options{})}
	opts := fastOptions()
	opts.BatchSize, opts.Linger, opts.Keep = 1000, 40*time.Millisecond, time.Minute
	r := outbox.New(s, opts)
	got := &collector{}
	r.Local("live", got.handle)
	run(t, r)
	testenv.WaitUntil(t, "the consumer reading", 15*time.Second, func() bool { return s.reads.Load() > 0 })
	start := s.reads.Load()
	for i := range 300 {
		appendN(t, s, i, 1)
		time.Sleep(time.Millisecond)
	}
	testenv.WaitUntil(t, "every event", 15*time.Second, func() bool { return len(got.distinct()) == 300 })
	if n := s.reads.Load() - start; n > 30 {
		t.Fatalf("%d reads for 300 events", n)
	}
}
