package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func eventData(entries []store.OutboxEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = string(e.Data)
	}
	return out
}

func wantEvents(t *testing.T, got []store.OutboxEntry, want ...string) {
	t.Helper()
	if fmt.Sprint(eventData(got)) != fmt.Sprint(want) {
		t.Fatalf("events = %q, want %q", eventData(got), want)
	}
	for i := 1; i < len(got); i++ {
		if store.CompareEventIDs(got[i-1].ID, got[i].ID) >= 0 {
			t.Fatalf("event ids out of order: %s then %s", got[i-1].ID, got[i].ID)
		}
	}
}

// testOutboxJobOrder: events appended alone for a job (AppendEvents with
// its id) are read in order with the job's committed events, even within
// one millisecond. The job's tree key "ff" puts it in the last shard of a
// sharded outbox, after which entries of other shards of the same
// millisecond would be read.
func testOutboxJobOrder(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	j := newJob("ff-outbox")
	must(t, s.CreateJob(ctx, j, store.Effects{}))
	var want []string
	for i := range 40 {
		c := fmt.Sprintf(`{"commit":%d}`, i)
		a := fmt.Sprintf(`{"append":%d}`, i)
		must(t, s.UpdateJob(ctx, j, store.Effects{Events: [][]byte{[]byte(c)}}))
		must(t, s.AppendEvents(ctx, j.ID, []byte(a)))
		want = append(want, c, a)
	}
	got, err := s.ReadEvents(ctx, "", 200, 0)
	must(t, err)
	wantEvents(t, got, want...)
}

// testOutboxCommit: events are written exactly when the write that carries
// them succeeds, in order, after whatever came before.
func testOutboxCommit(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	if id, err := s.LastEventID(ctx); err != nil || id != "" {
		t.Fatalf("empty outbox: last id %q, %v", id, err)
	}
	j := newJob("j")
	must(t, s.CreateJob(ctx, j, store.Effects{Events: [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`)}}))
	stale, _ := s.GetJob(ctx, "j")
	j.CurrentState = "next"
	must(t, s.UpdateJob(ctx, j, store.Effects{Events: [][]byte{[]byte(`{"n":3}`)}}))
	// A conflicting write and a create of an existing job write no event.
	if err := s.UpdateJob(ctx, stale, store.Effects{Events: [][]byte{[]byte(`lost`)}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if err := s.CreateJob(ctx, newJob("j"), store.Effects{Events: [][]byte{[]byte(`lost`)}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	// Entries of other trees (an append belongs to none) written within
	// the same millisecond may come in either order (store.Outbox).
	time.Sleep(2 * time.Millisecond)
	must(t, s.AppendEvents(ctx, "", []byte(`{"n":4}`)))

	all, err := s.ReadEvents(ctx, "", 100, 0)
	must(t, err)
	wantEvents(t, all, `{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`)
	last, err := s.LastEventID(ctx)
	must(t, err)
	if last != all[3].ID {
		t.Fatalf("last id %q, want %q", last, all[3].ID)
	}
	// Paging by cursor, and a cursor at the end reads nothing.
	page, err := s.ReadEvents(ctx, all[0].ID, 2, 0)
	must(t, err)
	wantEvents(t, page, `{"n":2}`, `{"n":3}`)
	rest, err := s.ReadEvents(ctx, last, 10, 0)
	must(t, err)
	if len(rest) != 0 {
		t.Fatalf("read after the last id: %q", eventData(rest))
	}
	// Trimming drops what is before the given id, and a cursor that was
	// trimmed away still reads on from there.
	must(t, s.TrimEvents(ctx, all[2].ID))
	if n, err := s.EventCount(ctx); err != nil || n != 2 {
		t.Fatalf("count after trim = %d, %v; want 2", n, err)
	}
	after, err := s.ReadEvents(ctx, all[0].ID, 10, 0)
	must(t, err)
	wantEvents(t, after, `{"n":3}`, `{"n":4}`)
}

// testOutboxWait: a reader waiting on an empty tail wakes when an event
// is committed, and a wait with nothing new ends after its time.
func testOutboxWait(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	start := time.Now()
	got, err := s.ReadEvents(ctx, "", 10, 100*time.Millisecond)
	must(t, err)
	if len(got) != 0 || time.Since(start) < 80*time.Millisecond {
		t.Fatalf("wait on an empty outbox returned %d events after %v", len(got), time.Since(start))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var woke []store.OutboxEntry
	var wakeErr error
	go func() {
		defer wg.Done()
		woke, wakeErr = s.ReadEvents(ctx, "", 10, 10*time.Second)
	}()
	time.Sleep(50 * time.Millisecond)
	must(t, s.CreateJob(ctx, newJob("j"), store.Effects{Events: [][]byte{[]byte(`{"created":true}`)}}))
	wg.Wait()
	must(t, wakeErr)
	wantEvents(t, woke, `{"created":true}`)
	// A cancelled context ends a wait without an error.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	last, _ := s.LastEventID(ctx)
	if got, err := s.ReadEvents(cctx, last, 10, 2*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("cancelled wait: %d events, %v", len(got), err)
	}
}
