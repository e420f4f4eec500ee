package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// batchProbe wraps a store: its commits of rewards are slow, so that the
// results of a fan-out queue behind each other, and with refuse set it
// refuses every commit of several (as a taken once-key or a claim no
// longer at the head of its queue would).
type batchProbe struct {
	store.Store
	refuse bool

	mu       sync.Mutex
	commits  int // commits with rewards
	combined int // of them, with several
	refused  int
	applied  int // rewards applied
}

func (s *batchProbe) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	if len(fx.Rewards) == 0 {
		return s.Store.UpdateJob(ctx, j, fx)
	}
	time.Sleep(5 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse && len(fx.Rewards) > 1 {
		s.refused++
		return fmt.Errorf("injected: %w", store.ErrNotHead)
	}
	err := s.Store.UpdateJob(ctx, j, fx)
	if err == nil {
		s.commits++
		if len(fx.Rewards) > 1 {
			s.combined++
		}
		for _, r := range fx.Rewards {
			if r.Applied {
				s.applied++
			}
		}
	}
	return err
}

// The results of a fan-out's branches that arrive together go out in
// fewer commits than results, each decided after the ones before it: the
// fan-in sees every branch, every reward applies once. A commit of several
// that the store refuses is written again one write at a time.
func TestResultsOfOneJobCommitTogether(t *testing.T) {
	t.Parallel()
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprint("refuse=", refuse), func(t *testing.T) {
			t.Parallel()
			const n = 24
			probe := &batchProbe{Store: memory.New(memory.Options{}), refuse: refuse}
			en := newEnv(t, Config{Store: probe}, fanOut("fan", n))
			for i := range n {
				en.register(&fakeWorker{id: fmt.Sprint("w", i), skills: map[string]float64{"work": 1}})
			}
			j := en.create("fan", nil)
			tasks := make([]*protocol.TaskPayload, n)
			for i := range tasks {
				p, err := en.e.NextTask(en.ctx, fmt.Sprint("w", i), 2*time.Second)
				if err != nil || p == nil {
					t.Fatalf("poll %d: %+v %v", i, p, err)
				}
				tasks[i] = p
			}
			var wg sync.WaitGroup
			var accepted atomic.Int64
			for i, p := range tasks {
				wg.Go(func() {
					resp, err := en.e.SubmitResult(en.ctx, fmt.Sprint("w", i), protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskSuccess})
					if err != nil || resp.Status != protocol.ResultAccepted {
						t.Errorf("result %d: %+v %v", i, resp, err)
						return
					}
					accepted.Add(1)
				})
			}
			wg.Wait()
			if got := en.waitEnd(j.ID); got.Status != protocol.StatusFinished {
				t.Fatalf("job %s", summary(got))
			}
			probe.mu.Lock()
			defer probe.mu.Unlock()
			if accepted.Load() != n || probe.applied != n {
				t.Fatalf("%d results accepted, %d rewards applied; want %d each", accepted.Load(), probe.applied, n)
			}
			if n := len(en.eventsOf(EventTaskResult)); n != len(tasks) {
				t.Fatalf("%d result events, want %d", n, len(tasks))
			}
			switch {
			case refuse && (probe.refused == 0 || probe.commits != n):
				t.Fatalf("%d commits refused, %d written; want some refused, then %d alone", probe.refused, probe.commits, n)
			case !refuse && (probe.combined == 0 || probe.commits >= n):
				t.Fatalf("%d commits for %d results, %d of several; want fewer commits", probe.commits, n, probe.combined)
			}
		})
	}
}

// heldJob is a job with no worker, whose one write in flight (adding 100
// to its transition count) waits for release, so that the writes a test
// starts wait for it.
type heldJob struct {
	t       *testing.T
	en      *env
	id      string
	before  *store.Job    // as stored before the write in flight
	release chan struct{} // closed: the write in flight goes on
	first   chan error    // its outcome
}

func holdJob(t *testing.T) *heldJob {
	en := newEnv(t, Config{}, oneTask())
	j := en.create("one", nil)
	en.waitStatus(j.ID, protocol.StatusWaitingForWorker) // no worker: nothing writes it now
	h := &heldJob{t: t, en: en, id: j.ID, release: make(chan struct{}), first: make(chan error, 1)}
	h.before = h.stored()
	inFlight := make(chan struct{})
	go func() {
		_, err := en.e.mutateTask(en.ctx, j.ID, "first", func(t *txn, j *store.Job) error {
			close(inFlight)
			<-h.release
			j.TransitionCount += 100
			return nil
		})
		h.first <- err
	}()
	<-inFlight
	return h
}

// write starts a write of the job.
func (h *heldJob) write(ctx context.Context, fn func(t *txn, j *store.Job) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := h.en.e.mutateTask(ctx, h.id, "next", fn)
		done <- err
	}()
	return done
}

// waiting waits until n writes wait for the one in flight.
func (h *heldJob) waiting(n int) {
	h.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b := &h.en.e.batches
		b.mu.Lock()
		got := len(b.jobs[h.id])
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d writes wait, want %d", got, n)
		}
	}
}

func (h *heldJob) stored() *store.Job {
	h.t.Helper()
	got, err := h.en.store.GetJob(h.en.ctx, h.id)
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// Writes that wait for a job's write in flight go out in one commit, each
// deciding on the job after the ones before it; one whose context ends
// while it waits is withdrawn, unwritten.
func TestWaitingWritesOneCommit(t *testing.T) {
	t.Parallel()
	h := holdJob(t)
	count := func(ctx context.Context, seen *int) <-chan error {
		return h.write(ctx, func(t *txn, j *store.Job) error {
			*seen = j.TransitionCount
			j.TransitionCount++
			return nil
		})
	}
	cancelled, cancel := context.WithCancel(h.en.ctx)
	var seen [3]int
	var withdrawn int
	a := count(h.en.ctx, &seen[0])
	w := count(cancelled, &withdrawn)
	b := count(h.en.ctx, &seen[1])
	c := count(h.en.ctx, &seen[2])
	h.waiting(4)
	cancel()
	if err := <-w; !errors.Is(err, context.Canceled) {
		t.Fatalf("withdrawn write: %v, want context.Canceled", err)
	}
	h.waiting(3)
	close(h.release)
	for _, ch := range []<-chan error{h.first, a, b, c} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	got, before := h.stored(), h.before
	if got.TransitionCount != before.TransitionCount+103 {
		t.Fatalf("transition count %d, want %d + 103", got.TransitionCount, before.TransitionCount)
	}
	base := before.TransitionCount + 100
	for i, s := range seen {
		if s < base || s > base+2 {
			t.Fatalf("write %d saw %d, want one of %d..%d", i, s, base, base+2)
		}
	}
	if seen[0] == seen[1] || seen[1] == seen[2] || seen[0] == seen[2] {
		t.Fatalf("writes saw %v: each must see the ones before it", seen)
	}
	if got.Version != before.Version+2 {
		t.Fatalf("version %d after two commits from %d", got.Version, before.Version)
	}
	if withdrawn != 0 {
		t.Fatalf("the withdrawn write ran (saw %d)", withdrawn)
	}
}

// A batch takes at most maxBatch of the writes waiting, in their order;
// the job's time in flight ends when none wait.
func TestBatchTakesAtMostMaxBatch(t *testing.T) {
	t.Parallel()
	var b batches
	if w := b.join(t.Context(), "j", "t0", nil); w != nil {
		t.Fatal("the first write of a job waits")
	}
	var waiting []*taskWrite
	for i := range maxBatch + 6 {
		waiting = append(waiting, b.join(t.Context(), "j", fmt.Sprint("t", i+1), nil))
	}
	if first := b.next("j"); len(first) != maxBatch || first[0] != waiting[0] || first[maxBatch-1] != waiting[maxBatch-1] {
		t.Fatalf("first batch: %d writes", len(first))
	}
	late := b.join(t.Context(), "j", "late", nil)
	if second := b.next("j"); len(second) != 7 || second[0] != waiting[maxBatch] || second[6] != late {
		t.Fatalf("second batch: %d writes", len(second))
	}
	if rest := b.next("j"); rest != nil {
		t.Fatalf("a third batch of %d", len(rest))
	}
	if w := b.join(t.Context(), "j", "t", nil); w != nil {
		t.Fatal("a write after the job's writes ended waits")
	}
}

// A write whose decision panics in a batch fails alone, with an error;
// the others of its batch are committed and the process lives on.
func TestPanicInBatchFailsItsWriteAlone(t *testing.T) {
	t.Parallel()
	h := holdJob(t)
	bad := h.write(h.en.ctx, func(t *txn, j *store.Job) error { panic("a bug") })
	good := h.write(h.en.ctx, func(t *txn, j *store.Job) error { j.TransitionCount++; return nil })
	h.waiting(2)
	close(h.release)
	if err := <-bad; !errors.Is(err, errPanicked) {
		t.Fatalf("the panicking write: %v, want errPanicked", err)
	}
	for _, ch := range []<-chan error{h.first, good} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	got, before := h.stored(), h.before
	if got.TransitionCount != before.TransitionCount+101 || got.Version != before.Version+2 {
		t.Fatalf("after the batch: transitions %d, version %d; want %d, %d", got.TransitionCount, got.Version, before.TransitionCount+101, before.Version+2)
	}
}
