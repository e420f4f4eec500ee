package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// fakeStore keeps appended batches in memory. gate, when set, holds every
// Append until it is closed (or the Append's context ends); fail makes that
// many Appends fail; an event whose Detail has "poison" is refused.
type fakeStore struct {
	Nop
	mu      sync.Mutex
	batches [][]Encoded
	ids     map[string]int
	gate    chan struct{}
	fail    int
	calls   int
}

func newFake() *fakeStore { return &fakeStore{ids: map[string]int{}} }

func (f *fakeStore) Append(ctx context.Context, events []Event) error {
	f.mu.Lock()
	gate := f.gate
	f.calls++
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return errors.New("connection refused")
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	encs, err := EncodeAll(events)
	if err != nil {
		return err
	}
	for _, e := range encs {
		if bytes.Contains(e.Detail, []byte("poison")) {
			return fmt.Errorf("store refuses %s: %w", e.ID, ErrInvalidEvent)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, encs)
	for _, e := range encs {
		f.ids[e.ID]++
	}
	return nil
}

func (f *fakeStore) snapshot() (batches [][]Encoded, ids map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids = make(map[string]int, len(f.ids))
	for k, v := range f.ids {
		ids[k] = v
	}
	return append([][]Encoded(nil), f.batches...), ids
}

func (f *fakeStore) all() []Encoded {
	b, _ := f.snapshot()
	var out []Encoded
	for _, x := range b {
		out = append(out, x...)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newRecorder(t *testing.T, s Store, o RecorderOptions) *Recorder {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	r := NewRecorder(s, o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

func ev(n int) Event {
	return Event{Type: StateEntered, JobID: "job-1", State: fmt.Sprint("s", n), Detail: map[string]any{"n": n}}
}

func TestRecorderBatches(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := newRecorder(t, fs, RecorderOptions{BatchSize: 10, MaxDelay: time.Hour})
	fs.mu.Lock() // hold the writer until everything is queued
	for i := range 35 {
		if err := r.Record(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	fs.mu.Unlock()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	batches, _ := fs.snapshot()
	var sizes []int
	n := 0
	for _, b := range batches {
		sizes = append(sizes, len(b))
		for _, e := range b {
			if e.State != fmt.Sprint("s", n) {
				t.Fatalf("event %d is %q: order not kept", n, e.State)
			}
			n++
		}
	}
	if n != 35 {
		t.Fatalf("wrote %d events, want 35", n)
	}
	for _, s := range sizes {
		if s > 10 {
			t.Fatalf("batch sizes %v exceed BatchSize 10", sizes)
		}
	}
	if len(sizes) > 5 {
		t.Fatalf("batch sizes %v: events were not batched", sizes)
	}
	st := r.Stats()
	if st.Recorded != 35 || st.Written != 35 || st.Batches != uint64(len(sizes)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestRecorderMaxDelay(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := newRecorder(t, fs, RecorderOptions{BatchSize: 100, MaxDelay: 20 * time.Millisecond})
	for i := range 3 {
		if err := r.Record(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(fs.all()) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("events not written within MaxDelay without a Flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b, _ := fs.snapshot(); len(b) != 1 {
		t.Fatalf("3 events close together took %d batches, want 1", len(b))
	}
}

func TestRecorderFillsDefaultsAndSnapshots(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := newRecorder(t, fs, RecorderOptions{})
	detail := map[string]any{"decision": "gpu-1"}
	job := &protocol.Job{ID: "job-9", Client: "acme", Blueprint: "bp", Status: protocol.StatusRunning}
	before := time.Now()
	if err := r.Record(ctx, Event{Type: TaskDispatched, Detail: detail, Job: job}); err != nil {
		t.Fatal(err)
	}
	detail["decision"] = "changed after Record"
	job.Status = protocol.StatusFailed
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := fs.all()
	if len(got) != 1 {
		t.Fatalf("got %d events", len(got))
	}
	e := got[0]
	if _, err := uuid.Parse(e.ID); err != nil {
		t.Fatalf("no UUID filled in: %q", e.ID)
	}
	if e.Time.Before(before.Add(-time.Millisecond)) || e.Time.After(time.Now()) {
		t.Fatalf("time %v not filled in with now", e.Time)
	}
	if !strings.Contains(string(e.Detail), "gpu-1") || e.Job == nil || e.Job.Status != "running" {
		t.Fatalf("changes after Record leaked in: detail %s, job %+v", e.Detail, e.Job)
	}
	if e.JobID != "job-9" || e.Client != "acme" || e.Blueprint != "bp" {
		t.Fatalf("job fields not taken from Job: %+v", e)
	}
}

func TestRecorderInvalidEvents(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := newRecorder(t, fs, RecorderOptions{})
	for name, e := range map[string]Event{
		"no type":        {JobID: "j"},
		"bad id":         {ID: "not-a-uuid", Type: JobCreated},
		"bad detail":     {Type: JobCreated, Detail: map[string]any{"ch": make(chan int)}},
		"job mismatch":   {Type: JobCreated, JobID: "a", Job: &protocol.Job{ID: "b"}},
		"job without id": {Type: JobCreated, Job: &protocol.Job{}},
	} {
		if err := r.Record(ctx, e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Record = %v, want ErrInvalidEvent", name, err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.all()); n != 0 || r.Stats().Recorded != 0 {
		t.Fatalf("invalid events were queued: %d written", n)
	}
}

// A slow store blocks Record (back-pressure) instead of dropping events;
// the blocked Record respects its context; nothing accepted is lost.
func TestRecorderBackPressure(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	fs.gate = make(chan struct{})
	r := newRecorder(t, fs, RecorderOptions{Buffer: 5, BatchSize: 2, MaxDelay: time.Millisecond})
	var accepted []string
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		e := ev(i)
		e.ID = uuid.NewString()
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		refused = r.Record(rctx, e)
		cancel()
		if refused == nil {
			accepted = append(accepted, e.ID)
		}
	}
	if !errors.Is(refused, context.DeadlineExceeded) {
		t.Fatalf("a full buffer never blocked Record (last error %v)", refused)
	}
	// Buffer plus the batch the writer holds.
	if len(accepted) < 5 || len(accepted) > 5+2 {
		t.Fatalf("accepted %d events with Buffer 5 and BatchSize 2", len(accepted))
	}
	// A Record without a deadline waits for room, then succeeds.
	late := ev(1000)
	late.ID = uuid.NewString()
	lateErr := make(chan error, 1)
	go func() { lateErr <- r.Record(ctx, late) }()
	select {
	case err := <-lateErr:
		t.Fatalf("Record returned %v while the buffer was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(fs.gate)
	if err := <-lateErr; err != nil {
		t.Fatal(err)
	}
	accepted = append(accepted, late.ID)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, ids := fs.snapshot()
	if len(ids) != len(accepted) {
		t.Fatalf("store has %d events, %d were accepted", len(ids), len(accepted))
	}
	for _, id := range accepted {
		if ids[id] != 1 {
			t.Fatalf("accepted event %s written %d times", id, ids[id])
		}
	}
	if r.Stats().BlockedWaits == 0 {
		t.Fatal("BlockedWaits not counted")
	}
}

func TestRecorderRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	fs.fail = 3
	r := newRecorder(t, fs, RecorderOptions{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond})
	if err := r.RecordSync(ctx, ev(1)); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.all()); n != 1 {
		t.Fatalf("RecordSync returned but the store has %d events", n)
	}
	if st := r.Stats(); st.Failures != 3 || st.Written != 1 {
		t.Fatalf("stats %+v, want 3 failures and 1 written", st)
	}
}

func TestRecorderIsolatesRefusedEvents(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := newRecorder(t, fs, RecorderOptions{MaxDelay: time.Hour})
	fs.mu.Lock()
	for i := range 5 {
		if err := r.Record(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	poison := Event{Type: Progress, Detail: map[string]any{"poison": true}}
	syncErr := make(chan error, 1)
	go func() { syncErr <- r.RecordSync(ctx, poison) }()
	time.Sleep(20 * time.Millisecond)
	fs.mu.Unlock()
	if err := <-syncErr; !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("RecordSync of a refused event = %v, want ErrInvalidEvent", err)
	}
	if err := r.RecordSync(ctx, ev(5)); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.all()); n != 6 {
		t.Fatalf("store has %d events, want the 6 good ones", n)
	}
	if st := r.Stats(); st.Rejected != 1 {
		t.Fatalf("stats %+v, want 1 rejected", st)
	}
}

func TestRecorderCloseFlushes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := NewRecorder(fs, RecorderOptions{MaxDelay: time.Hour, BatchSize: 1000, Logger: quiet()})
	for i := range 100 {
		if err := r.Record(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.all()); n != 100 {
		t.Fatalf("Close left %d of 100 events unwritten", 100-n)
	}
	if err := r.Record(ctx, ev(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close = %v", err)
	}
	if err := r.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close = %v", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// Records waiting for room when Close is called get in and are written.
func TestRecorderCloseLetsWaitingRecordsIn(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	fs.gate = make(chan struct{})
	r := NewRecorder(fs, RecorderOptions{Buffer: 2, BatchSize: 1, MaxDelay: time.Millisecond, Logger: quiet()})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() { errs <- r.Record(ctx, ev(i)) })
	}
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	time.Sleep(20 * time.Millisecond)
	close(fs.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("waiting Record = %v", err)
		}
	}
	if n := len(fs.all()); n != 10 {
		t.Fatalf("store has %d of 10 events", n)
	}
}

// When the store never answers, Close gives up at its deadline, says how
// many events were not written, and stops the writer.
func TestRecorderCloseGivesUp(t *testing.T) {
	// Not parallel: it gives the synchronous record 20 ms to be queued.
	ctx := testCtx(t)
	fs := newFake()
	fs.gate = make(chan struct{}) // never opened
	r := NewRecorder(fs, RecorderOptions{BatchSize: 2, MaxDelay: time.Millisecond, Logger: quiet()})
	for i := range 5 {
		if err := r.Record(ctx, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	syncErr := make(chan error, 1)
	go func() { syncErr <- r.RecordSync(ctx, ev(5)) }()
	time.Sleep(20 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := r.Close(cctx)
	if err == nil || !strings.Contains(err.Error(), "6 events not written") {
		t.Fatalf("Close = %v, want it to report 6 unwritten events", err)
	}
	select {
	case <-r.done:
	default:
		t.Fatal("writer still running after Close returned")
	}
	if err := <-syncErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting RecordSync = %v, want ErrClosed", err)
	}
	if err := r.Close(ctx); err == nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want the loss reported again", err)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFake()
	r := NewRecorder(fs, RecorderOptions{Buffer: 64, BatchSize: 32, MaxDelay: time.Millisecond, Logger: quiet()})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := ev(w*each + i)
				var err error
				switch i % 20 {
				case 0:
					err = r.RecordSync(ctx, e)
				case 1:
					if err = r.Record(ctx, e); err == nil {
						err = r.Flush(ctx)
					}
				default:
					err = r.Record(ctx, e)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, ids := fs.snapshot()
	if len(ids) != writers*each {
		t.Fatalf("store has %d events, want %d", len(ids), writers*each)
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("event %s written %d times", id, n)
		}
	}
}
