package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// The ready queue lives in Redis (ready:queue, ready:leases, ready:dirty);
// NextReady callers of a process wait in memory, without a connection each.
// A push publishes on the ready channel; the store's listener wakes that
// many local waiters, in every process. A woken waiter that takes a job
// while more are queued wakes the next one, and a waiter that gives up
// after being woken passes the wake-up on, so no ready job waits while a
// waiter sleeps. Lapsed leases are reclaimed by the take script; the local
// lease alarm wakes a waiter when the earliest lease lapses.

func readyKeys(k keys) []string {
	return []string{k.readyQueue(), k.readySeq(), k.readyLeases(), k.readyDirty()}
}

// PushReady implements store.ReadyQueue.
func (s *Store) PushReady(ctx context.Context, ids ...string) error {
	byShard := map[int][]any{}
	for _, id := range ids {
		i := shardIndex(id, len(s.shards))
		byShard[i] = append(byShard[i], id)
	}
	for i, ids := range byShard {
		argv := append([]any{s.g.readyChannel()}, ids...)
		if err := pushReadyScript.Run(ctx, s.rdb, readyKeys(s.shards[i]), argv...).Err(); err != nil {
			return fail(ctx, "push ready jobs", err)
		}
	}
	return nil
}

// NextReady implements store.ReadyQueue.
func (s *Store) NextReady(ctx context.Context, lease time.Duration) (string, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		// Wait in line before looking, so that a push between the look and
		// the wait still wakes this caller.
		ch := s.waiters.add()
		t, err := s.takeReady(ctx, lease)
		if err != nil {
			s.waiters.drop(ch)
			return "", 0, err
		}
		if t.wait >= 0 {
			s.alarm.set(t.wait, func() { s.waiters.wake(1) })
		}
		if t.id != "" {
			s.waiters.drop(ch)
			if t.rest > 0 {
				s.waiters.wake(1)
			}
			return t.id, t.version, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.waiters.drop(ch)
			return "", 0, ctx.Err()
		case <-s.ctx.Done():
			s.waiters.drop(ch)
			return "", 0, errClosed
		}
	}
}

// taken is what a take of takeReady found.
type taken struct {
	id      string        // the job taken and leased, "" if none
	version int64         // its stored version, 0 if it no longer exists
	rest    int64         // jobs still queued (see takeReady)
	wait    time.Duration // until the earliest lease seen lapses, negative if none
}

// takeReady runs takeReadyScript on each shard, from a rotating start,
// until one hands out a job: the job taken ("" if none) and its version,
// how many are still queued (in its shard, or when none there, in the
// shards not visited), and when the earliest lease seen lapses.
func (s *Store) takeReady(ctx context.Context, lease time.Duration) (taken, error) {
	t := taken{wait: -1}
	order := s.visit()
	for n, i := range order {
		k := s.shards[i]
		res, err := takeReadyScript.Run(ctx, s.rdb, readyKeys(k), lease.Milliseconds(), s.g.readyChannel(), k.base).Slice()
		if err != nil {
			return taken{}, fail(ctx, "take ready job", err)
		}
		if len(res) != 4 {
			return taken{}, fmt.Errorf("take ready job: unexpected reply %v", res)
		}
		id, _ := res[0].(string)
		rest, _ := res[1].(int64)
		ms, _ := res[2].(int64)
		if d := time.Duration(ms) * time.Millisecond; ms >= 0 && (t.wait < 0 || d < t.wait) {
			t.wait = d
		}
		if id == "" {
			continue
		}
		t.id, t.rest = id, rest
		if v, _ := res[3].(string); v != "" {
			if t.version, err = strconv.ParseInt(v, 10, 64); err != nil {
				return taken{}, fmt.Errorf("take ready job %s: version %q: %w", id, v, err)
			}
		}
		if rest == 0 && n+1 < len(order) {
			// The caller wakes the next waiter only when more jobs are
			// queued: those of the shards not visited count too.
			if t.rest, err = s.queuedIn(ctx, order[n+1:]); err != nil {
				return taken{}, err
			}
		}
		return t, nil
	}
	return t, nil
}

// queuedIn counts the jobs in the ready queues of some shards.
func (s *Store) queuedIn(ctx context.Context, shards []int) (int64, error) {
	ks := make([]keys, len(shards))
	for i, k := range shards {
		ks[i] = s.shards[k]
	}
	n, err := sumOver(ctx, s.rdb, ks, func(p goredis.Pipeliner, k keys) *goredis.IntCmd {
		return p.ZCard(ctx, k.readyQueue())
	})
	if err != nil {
		return 0, fail(ctx, "count ready jobs", err)
	}
	return n, nil
}

// ExtendReady implements store.ReadyQueue.
func (s *Store) ExtendReady(ctx context.Context, id string, lease time.Duration) error {
	ok, err := extendReadyScript.Run(ctx, s.rdb, readyKeys(s.shard(id)), id, ttlMillis(lease)).Int()
	if err != nil {
		return fail(ctx, "extend lease of job "+id, err)
	}
	if ok == 0 {
		return fmt.Errorf("lease of job %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// DoneReady implements store.ReadyQueue.
func (s *Store) DoneReady(ctx context.Context, id string) error {
	return fail(ctx, "end lease of job "+id, doneReadyScript.Run(ctx, s.rdb, readyKeys(s.shard(id)), id, s.g.readyChannel()).Err())
}

// waitList is the FIFO of this process's NextReady callers.
type waitList struct {
	mu sync.Mutex
	q  []chan struct{}
}

func (w *waitList) add() chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.q = append(w.q, ch)
	w.mu.Unlock()
	return ch
}

// wake signals up to n waiters, oldest first, taking them off the list.
func (w *waitList) wake(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(n, len(w.q))
	for _, ch := range w.q[:n] {
		ch <- struct{}{}
	}
	w.q = slices.Delete(w.q, 0, n)
}

func (w *waitList) wakeAll() {
	w.mu.Lock()
	n := len(w.q)
	w.mu.Unlock()
	w.wake(n)
}

// drop takes ch off the list. If it was signalled already, the signal goes
// to the next waiter: it may have been meant for a job this caller will
// not take.
func (w *waitList) drop(ch chan struct{}) {
	w.mu.Lock()
	if i := slices.Index(w.q, ch); i >= 0 {
		w.q = slices.Delete(w.q, i, i+1)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	select {
	case <-ch:
		w.wake(1)
	default:
	}
}

// leaseAlarm runs a function when the earliest known ready lease lapses.
type leaseAlarm struct {
	mu      sync.Mutex
	t       *time.Timer
	at      time.Time // zero when unset
	stopped bool
}

// set arms the alarm to fire after d, unless it fires sooner already.
func (a *leaseAlarm) set(d time.Duration, fire func()) {
	const slack = 2 * time.Millisecond // fire after the server's lease lapsed
	at := time.Now().Add(d + slack)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || (!a.at.IsZero() && !a.at.After(at)) {
		return
	}
	if a.t != nil {
		a.t.Stop()
	}
	a.at = at
	a.t = time.AfterFunc(d+slack, func() {
		a.mu.Lock()
		if a.at.Equal(at) {
			a.at = time.Time{}
		}
		stopped := a.stopped
		a.mu.Unlock()
		if !stopped {
			fire()
		}
	})
}

func (a *leaseAlarm) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.t != nil {
		a.t.Stop()
	}
}

// parseCount reads the payload of a ready message.
func parseCount(payload string) int {
	n, err := strconv.Atoi(payload)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
