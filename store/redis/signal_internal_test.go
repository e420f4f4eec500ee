package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// twoSharded opens two Stores with 4 shards on one fresh prefix (two
// processes), deleting the prefix's keys at the end.
func twoSharded(t *testing.T) (a, b *Store, ctx context.Context) {
	t.Helper()
	return twoStores(t, 4)
}

// twoStores opens two Stores of one deployment of n shards, as two
// processes would.
func twoStores(t *testing.T, n int) (a, b *Store, ctx context.Context) {
	t.Helper()
	url := testenv.URL(t, testenv.RedisVar)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	prefix := fmt.Sprintf("avtotest-signal-%d", time.Now().UnixNano())
	open := func() *Store {
		s, err := Open(ctx, Options{URL: url, Prefix: prefix, Shards: n})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b = open(), open()
	t.Cleanup(func() {
		for _, match := range KeyPatterns(prefix, n) {
			iter := b.rdb.Scan(context.Background(), 0, match, 1000).Iterator()
			for iter.Next(context.Background()) {
				b.rdb.Del(context.Background(), iter.Val())
			}
		}
	})
	return a, b, ctx
}

// countCalls counts the commands a Store sends (a pipeline counts each),
// but those that set up a connection.
type countCalls struct {
	n    atomic.Int64
	mu   sync.Mutex
	sent []string // each command's name and first key, in order
}

func (c *countCalls) add(cmd goredis.Cmder, err error) {
	// A script's first run on a fresh server is EVALSHA refused, then
	// EVAL: one command of the Store's. (The refusal shows in what the
	// hook's next returns; the command's own error may come later.)
	if noScript(err) || noScript(cmd.Err()) {
		return
	}
	if connSetup(cmd) {
		return
	}
	n := cmd.Name()
	c.n.Add(1)
	what := n
	if args := cmd.Args(); (n == "eval" || n == "evalsha") && len(args) > 3 {
		what += fmt.Sprint(" ", args[3]) // its first key
	} else if len(args) > 1 {
		what += fmt.Sprint(" ", args[1])
	}
	c.mu.Lock()
	c.sent = append(c.sent, what)
	c.mu.Unlock()
}

// connSetup tells the commands go-redis sends to set up a connection
// (HELLO, CLIENT SETINFO), which are not the Store's.
func connSetup(cmd goredis.Cmder) bool {
	n := cmd.Name()
	return n == "hello" || n == "client"
}

func noScript(err error) bool {
	return errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// since returns the commands sent after the first n, for a failure's
// message.
func (c *countCalls) since(n int64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sent[min(int(n), len(c.sent)):]...)
}

func (c *countCalls) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *countCalls) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		c.add(cmd, err)
		return err
	}
}
func (c *countCalls) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.add(cmd, nil)
		}
		return err
	}
}

// commitIn writes a job of shard k (of 4) with an event and, if at is not
// zero, a timer due then.
func commitIn(t *testing.T, ctx context.Context, s *Store, k int, at time.Time) {
	t.Helper()
	id := fmt.Sprintf("%02x000000-0000-4000-8000-%012d", k, time.Now().UnixNano()%1e12)
	j := &store.Job{ID: id, Blueprint: "bp", Status: protocol.StatusPending, CreatedAt: time.Now()}
	fx := store.Effects{Events: [][]byte{[]byte("e-" + id)}}
	if !at.IsZero() {
		fx.Timers = []store.Timer{{JobID: id, Kind: store.TimerStep, Ref: "s", At: at}}
	}
	if err := s.CreateJob(ctx, j, fx); err != nil {
		t.Fatal(err)
	}
}

// enqueueFor queues a task for worker w in a job of shard k (of 4) and
// returns the task's id.
func enqueueFor(t *testing.T, ctx context.Context, s *Store, k int, w string) string {
	t.Helper()
	id := fmt.Sprintf("%02x000000-0000-4000-8000-%012d", k, time.Now().UnixNano()%1e12)
	qt := store.QueuedTask{JobID: id, Worker: w, Run: store.TaskRun{ID: "task-" + store.NewTreeID(id), State: store.TaskQueued}}
	j := &store.Job{ID: id, Blueprint: "bp", Status: protocol.StatusPending, CreatedAt: time.Now()}
	if err := s.CreateJob(ctx, j, store.Effects{Enqueue: []store.QueuedTask{qt}}); err != nil {
		t.Fatal(err)
	}
	return qt.Run.ID
}

// TestShardedReadEventsWaitsForSignal: a sharded ReadEvents that waits
// sends no command until an event comes, and returns an event another
// process commits at once (not after the fallback poll).
func TestShardedReadEventsWaitsForSignal(t *testing.T) {
	a, b, ctx := twoSharded(t)
	var calls countCalls
	a.rdb.AddHook(&calls)
	type result struct {
		got []store.OutboxEntry
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		got, err := a.ReadEvents(ctx, "", 10, 10*time.Second)
		done <- result{got, err, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond)
	if n := calls.n.Load(); n > 4 {
		t.Fatalf("a waiting reader sent %d commands in 500ms (%q): it polls", n, calls.since(0))
	}
	sent := time.Now()
	commitIn(t, ctx, b, 2, time.Time{})
	r := <-done
	if r.err != nil || len(r.got) != 1 {
		t.Fatalf("read = %v, %v", r.got, r.err)
	}
	if d := r.at.Sub(sent); d > shardFallback/2 {
		t.Fatalf("the event came %s after the commit: the signal did not wake the reader", d)
	}
	// Caught up: the next read asks only the shard that had the event.
	before := calls.n.Load()
	if got, err := a.ReadEvents(ctx, r.got[0].ID, 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("read after = %v, %v", got, err)
	}
	if n := calls.n.Load() - before; n > 1 {
		t.Fatalf("a caught-up read sent %d commands, want at most 1: %q", n, calls.since(before))
	}
}

// TestShardedLostSignalOnlyDelays: entries and timers written without a
// signal (as if the message were lost) are still found, within
// shardFallback.
func TestShardedLostSignalOnlyDelays(t *testing.T) {
	a, _, ctx := twoSharded(t)
	if got, err := a.ReadEvents(ctx, "", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("first read = %v, %v", got, err)
	}
	if _, ok, err := a.NextTimer(ctx); ok || err != nil {
		t.Fatalf("next timer of none: %v %v", ok, err)
	}
	start := time.Now()
	if err := a.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: a.shards[3].outbox(), Values: []any{"e", "lost"}}).Err(); err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if err := a.rdb.ZAdd(ctx, a.shards[1].timers(), goredis.Z{Score: float64(due.UnixMicro()), Member: "step|x|s|0"}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := a.ReadEvents(ctx, "", 10, 10*time.Second)
	if err != nil || len(got) != 1 || string(got[0].Data) != "lost" {
		t.Fatalf("read = %v, %v", got, err)
	}
	if d := time.Since(start); d > shardFallback+time.Second {
		t.Fatalf("an unsignalled event came after %s", d)
	}
	for {
		at, ok, err := a.NextTimer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if !at.Equal(due) {
				t.Fatalf("next timer = %s, want %s", at, due)
			}
			break
		}
		if time.Since(start) > shardFallback+time.Second {
			t.Fatal("an unsignalled timer is still unknown")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShardedTimersLearnFromSignals: a Store that knows every shard's
// earliest timer learns, from the signal, of a timer another process adds,
// and of its own at once; knowing, it sends nothing.
func TestShardedTimersLearnFromSignals(t *testing.T) {
	a, b, ctx := twoSharded(t)
	var calls countCalls
	a.rdb.AddHook(&calls)
	if _, ok, err := a.NextTimer(ctx); ok || err != nil {
		t.Fatalf("next timer of none: %v %v", ok, err)
	}
	before := calls.n.Load()
	if _, ok, err := a.NextTimer(ctx); ok || err != nil {
		t.Fatalf("next timer of none: %v %v", ok, err)
	}
	if due, err := a.DueTimers(ctx, time.Now(), 10, time.Minute); err != nil || len(due) != 0 {
		t.Fatalf("due = %v, %v", due, err)
	}
	if n := calls.n.Load() - before; n != 0 {
		t.Fatalf("with every shard known, NextTimer and DueTimers sent %d commands: %q", n, calls.since(before))
	}
	other := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	commitIn(t, ctx, b, 1, other)
	deadline := time.Now().Add(shardFallback / 2)
	for {
		at, ok, err := a.NextTimer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok && at.Equal(other) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("next timer = %s %v, want the other process's %s", at, ok, other)
		}
		time.Sleep(10 * time.Millisecond)
	}
	own := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	commitIn(t, ctx, a, 1, own)
	if at, ok, err := a.NextTimer(ctx); err != nil || !ok || !at.Equal(own) {
		t.Fatalf("next timer right after the own commit = %s %v %v, want %s", at, ok, err, own)
	}
}

// TestShardedEmptyQueueKnown: a queue a look found empty is not read again
// until a message names it: another process's enqueue is claimed once its
// message came, the Store's own at once.
func TestShardedEmptyQueueKnown(t *testing.T) {
	a, b, ctx := twoSharded(t)
	var calls countCalls
	a.rdb.AddHook(&calls)
	q := store.WorkerQueue("w")
	if got, err := a.ClaimNext(ctx, q, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	pollEmpty(t, ctx, a, &calls, q, q)
	// The message named the shard: its head and the claim, not a look at
	// every shard.
	claimAnnounced(t, ctx, a, &calls, q, enqueueFor(t, ctx, b, 3, "w"), 2)
	if got, err := a.ClaimNext(ctx, q, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	ours := enqueueFor(t, ctx, a, 2, "w")
	if got, err := a.ClaimNext(ctx, q, "w"); err != nil || got == nil || got.Run.ID != ours {
		t.Fatalf("claim right after the own enqueue = %v, %v; want %s", got, err, ours)
	}
}

// TestOneShardEmptyQueueKnown: with one shard too, a queue a claim or a
// peek found empty, or a claim emptied, is not read again until a message
// names it.
func TestOneShardEmptyQueueKnown(t *testing.T) {
	a, b, ctx := twoStores(t, 1)
	var calls countCalls
	a.rdb.AddHook(&calls)
	own, pending := store.WorkerQueue("w"), store.PendingQueue("skill")
	if got, err := a.ClaimNext(ctx, own, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	if got, err := a.PeekTasks(ctx, pending, 1); len(got) != 0 || err != nil {
		t.Fatalf("peek at an empty queue = %v, %v", got, err)
	}
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("the first claim and peek sent %d commands, want 2: %q", n, calls.since(0))
	}
	pollEmpty(t, ctx, a, &calls, own, pending)
	claimAnnounced(t, ctx, a, &calls, own, enqueueFor(t, ctx, b, 0, "w"), 1)
	// The claim emptied the queue: the next poll knows.
	before := calls.n.Load()
	if got, err := a.ClaimNext(ctx, own, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	if n := calls.n.Load() - before; n != 0 {
		t.Fatalf("a claim after the one that emptied the queue sent %d commands: %q", n, calls.since(before))
	}
	ours := enqueueFor(t, ctx, a, 0, "w")
	if got, err := a.ClaimNext(ctx, own, "w"); err != nil || got == nil || got.Run.ID != ours {
		t.Fatalf("claim right after the own enqueue = %v, %v; want %s", got, err, ours)
	}
}

// pollEmpty claims from one queue and peeks at another, both known empty,
// ten times: no command may go out.
func pollEmpty(t *testing.T, ctx context.Context, a *Store, calls *countCalls, claimQ, peekQ string) {
	t.Helper()
	before := calls.n.Load()
	for range 10 {
		if got, err := a.ClaimNext(ctx, claimQ, "w"); got != nil || err != nil {
			t.Fatalf("claim from an empty queue = %v, %v", got, err)
		}
		if got, err := a.PeekTasks(ctx, peekQ, 1); len(got) != 0 || err != nil {
			t.Fatalf("peek at an empty queue = %v, %v", got, err)
		}
	}
	if n := calls.n.Load() - before; n != 0 {
		t.Fatalf("polls of queues known empty sent %d commands: %q", n, calls.since(before))
	}
}

// claimAnnounced polls a's claim of queue q until it returns task want,
// which another process queued, within half the fallback: the queue
// message, not the fallback, ended what a knew. Until the claim gets it,
// the polls may send at most most commands.
func claimAnnounced(t *testing.T, ctx context.Context, a *Store, calls *countCalls, q, want string, most int64) {
	t.Helper()
	deadline := time.Now().Add(shardFallback / 2)
	before := calls.n.Load()
	for {
		got, err := a.ClaimNext(ctx, q, "w")
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			if got.Run.ID != want {
				t.Fatalf("claimed %s, want %s", got.Run.ID, want)
			}
			if n := calls.n.Load() - before; n > most {
				t.Fatalf("the claim of a task the queue channel announced sent %d commands, want %d: %q", n, most, calls.since(before))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("another process's task is not claimed after its message")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFiguresReadOncePerAge: WorkerFigures reads the figures at most once
// per loadsAge, counting meanwhile the tasks the Store itself queued and
// the reputations it wrote; another process's at the next read. A worker
// not read before is read at once, with the others.
func TestFiguresReadOncePerAge(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			a, b, ctx := twoStores(t, shards)
			var calls countCalls
			a.rdb.AddHook(&calls)
			figures := func(ids ...string) store.WorkerFigures {
				t.Helper()
				f, err := a.WorkerFigures(ctx, ids...)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			if f := figures("w"); f.Loads["w"] != 0 || len(f.Reputations) != 0 {
				t.Fatalf("figures of nothing = %+v", f)
			}
			enqueueFor(t, ctx, a, 1, "w")
			if err := a.SetReputation(ctx, "w", 0.5); err != nil {
				t.Fatal(err)
			}
			start := calls.n.Load()
			if f := figures("w"); f.Loads["w"] != 1 || f.Reputations["w"] != 0.5 {
				t.Fatalf("figures after the own enqueue and reputation = %+v, want load 1, reputation 0.5", f)
			}
			if n := calls.n.Load() - start; n != 0 {
				t.Fatalf("figures within loadsAge sent %d commands: %q", n, calls.since(start))
			}
			enqueueFor(t, ctx, b, 2, "w")
			if err := b.SetReputation(ctx, "w", 0.25); err != nil {
				t.Fatal(err)
			}
			if f := figures("v", "w"); f.Loads["w"] != 2 || f.Reputations["w"] != 0.25 {
				t.Fatalf("figures with a worker not read before = %+v, want a read: load 2, reputation 0.25", f)
			}
			if err := b.SetReputation(ctx, "w", 0.75); err != nil {
				t.Fatal(err)
			}
			time.Sleep(loadsAge)
			// Past loadsAge the copy still answers at once, and a read in
			// the background brings the other process's reputation.
			start = calls.n.Load()
			if f := figures("w"); f.Reputations["w"] != 0.25 || len(f.Reputations) != 1 {
				t.Fatalf("figures after loadsAge = %+v, want the copy's reputation 0.25, w's alone", f)
			}
			for deadline := time.Now().Add(5 * time.Second); figures("w").Reputations["w"] != 0.75; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the read in the background never brought the other process's reputation 0.75")
				}
			}
			background := calls.n.Load() - start
			// Past figuresStale a dispatch waits for the read.
			if err := b.SetReputation(ctx, "w", 0.5); err != nil {
				t.Fatal(err)
			}
			time.Sleep(figuresStale)
			start = calls.n.Load()
			if f := figures("w"); f.Reputations["w"] != 0.5 {
				t.Fatalf("figures after figuresStale = %+v, want the other process's reputation 0.5 at once", f)
			}
			if read := calls.n.Load() - start; read == 0 || background < read {
				t.Fatalf("the read in the background sent %d commands, a read %d: want a read", background, read)
			}
		})
	}
}

// TestHintsPeekRacingAMessage: a PeekTasks that found nothing while a
// message named the queue leaves a hint that asks for a full look, and
// that a later message fills in.
func TestHintsPeekRacingAMessage(t *testing.T) {
	var h claimHints
	now := time.Now()
	ver := h.snapshot("q")
	h.notify("q", 2) // came during the peek
	h.looked("q", nil, ver, now)
	if h.knownEmpty("q", now) {
		t.Fatal("a queue a message named during the look is known empty")
	}
	h.notify("q", 3)
	if _, _, state := h.next("q", now); state != hintLook {
		t.Fatalf("next = %v, want a full look: the look may have missed a task", state)
	}
	if idx, _ := h.unread("q"); len(idx) != 1 || idx[0] != 3 {
		t.Fatalf("unread = %v, want [3]", idx)
	}
}

// TestHintsKeepAShardAMessageNamedDuringAClaim: a claim that empties a
// shard while a message names it leaves the shard to be read again, not
// the queue known empty.
func TestHintsKeepAShardAMessageNamedDuringAClaim(t *testing.T) {
	var h claimHints
	now := time.Now()
	h.looked("q", map[int]head{1: {score: 5, member: "a"}}, h.snapshot("q"), now)
	k, _, state := h.next("q", now)
	if state != hintClaim || k != 1 {
		t.Fatalf("next = %d %v", k, state)
	}
	mark := h.mark("q", 1)
	h.notify("q", 1) // a task queued in shard 1 after the claim read it
	h.learn("q", 1, mark, nil, true)
	if h.knownEmpty("q", now) {
		t.Fatal("the queue is known empty though a message named shard 1 during the claim")
	}
	if idx, _ := h.unread("q"); len(idx) != 1 || idx[0] != 1 {
		t.Fatalf("unread = %v, want [1]", idx)
	}
	// Without a message, the claim that empties the last shard makes the
	// queue known empty.
	h.read("q", []int{1}, []uint64{h.mark("q", 1)}, map[int]head{1: {score: 7, member: "b"}})
	mark = h.mark("q", 1)
	h.learn("q", 1, mark, nil, true)
	if !h.knownEmpty("q", now) {
		t.Fatal("the queue is not known empty after its last shard was emptied")
	}
}

// TestHintsEchoes: a commit's own queue message counts once, at the
// commit; another process's message taken for the echo is counted when
// the echo comes; a commit that failed counts as a message and expects
// nothing more.
func TestHintsEchoes(t *testing.T) {
	var h claimHints
	now := time.Now()
	h.looked("q", nil, h.snapshot("q"), now)
	h.expect([]string{"q"})
	h.notify("q", -1) // the commit returned
	h.looked("q", nil, h.snapshot("q"), now)
	if !h.echo("q") || !h.knownEmpty("q", now) {
		t.Fatal("the commit's echo ended what the claim after the commit learned")
	}
	if h.echo("q") {
		t.Fatal("one echo expected, two taken")
	}

	// Another process's message comes first and is taken for the echo:
	// the echo, when it comes, is counted in its place.
	h.expect([]string{"q"})
	h.notify("q", -1)
	h.looked("q", nil, h.snapshot("q"), now)
	if !h.echo("q") {
		t.Fatal("a message with the payload expected was not taken for the echo")
	}
	if h.echo("q") {
		t.Fatal("the echo after it was taken as expected too")
	}
	h.notify("q", -1) // as listen does with a message not expected
	if h.knownEmpty("q", now) {
		t.Fatal("the queue is known empty after another process's message")
	}

	// A commit that failed may have had another process's message taken
	// for its echo: it counts as a message, and expects nothing more.
	h.looked("q", nil, h.snapshot("q"), now)
	h.expect([]string{"q", "0|q"})
	if !h.echo("0|q") {
		t.Fatal("expected payloads are told apart")
	}
	h.missed([]string{"q", "0|q"})
	h.notify("q", -1)
	if h.knownEmpty("q", now) || h.echo("q") || h.echo("0|q") {
		t.Fatal("a failed commit left an echo expected, or did not count as a message")
	}

	h.expect([]string{"q"})
	h.reset()
	if h.echo("q") {
		t.Fatal("an echo is expected after a resubscription")
	}
}

// TestOneShardOwnEchoCountsOnce: after the Store's own enqueue and the
// claim that empties the queue, the enqueue's message coming back does
// not make the next poll read the queue.
func TestOneShardOwnEchoCountsOnce(t *testing.T) {
	a, _, ctx := twoStores(t, 1)
	var calls countCalls
	a.rdb.AddHook(&calls)
	q := store.WorkerQueue("w")
	if got, err := a.ClaimNext(ctx, q, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	ours := enqueueFor(t, ctx, a, 0, "w")
	if got, err := a.ClaimNext(ctx, q, "w"); err != nil || got == nil || got.Run.ID != ours {
		t.Fatalf("claim right after the own enqueue = %v, %v; want %s", got, err, ours)
	}
	deadline := time.Now().Add(shardFallback / 2)
	for {
		a.hints.mu.Lock()
		waiting := a.hints.echoes[q] > 0
		a.hints.mu.Unlock()
		if !waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the own enqueue's message did not come back")
		}
		time.Sleep(time.Millisecond)
	}
	before := calls.n.Load()
	if got, err := a.ClaimNext(ctx, q, "w"); got != nil || err != nil {
		t.Fatalf("claim from an empty queue = %v, %v", got, err)
	}
	if n := calls.n.Load() - before; n != 0 {
		t.Fatalf("a poll after the own message came back sent %d commands: %q", n, calls.since(before))
	}
}
