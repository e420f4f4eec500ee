// Package historytest is the conformance suite of history.Store: the
// behaviour every backend (SQLite, PostgreSQL) must have. Call Run from a
// backend's tests.
package historytest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// Factory returns a new, empty store. It registers its own cleanup.
type Factory func(t *testing.T) history.Store

// Run runs the whole suite; every test gets a fresh store.
func Run(t *testing.T, newStore Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, history.Store)
	}{
		{"Events/AppendAndRead", testAppendRead},
		{"Events/TiesKeepAppendOrder", testTies},
		{"Events/Idempotent", testIdempotent},
		{"Events/InvalidBatchWritesNothing", testInvalidBatch},
		{"Events/BigAndUnicode", testBigUnicode},
		{"Events/Concurrent", testConcurrent},
		{"Jobs/SummaryUpserted", testSummary},
		{"Jobs/StaleSummaryIgnored", testStaleSummary},
		{"Jobs/NotFound", testNotFound},
		{"Jobs/ListFilters", testListFilters},
		{"Jobs/ListPagination", testPagination},
		{"Jobs/ListCursorStable", testCursorStable},
		{"Jobs/ConcurrentSummaries", testConcurrentSummaries},
		{"Jobs/LiveStores", testLiveStores},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// base is not UTC and has nanoseconds, to check that backends normalise.
var base = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+3", 3*3600))

// sameTime reports whether a stored time is want, to the microsecond.
func sameTime(got *time.Time, want time.Time) bool {
	return got != nil && got.Equal(want.Truncate(time.Microsecond)) && got.Location() == time.UTC
}

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

func event(typ history.EventType, job string, when time.Time) history.Event {
	return history.Event{ID: uuid.NewString(), Time: when, Type: typ, JobID: job}
}

// expected is what a backend must give back for e: UTC microsecond time,
// Detail through JSON, no job snapshot.
func expected(t *testing.T, e history.Event) history.Event {
	t.Helper()
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if j := e.Job; j != nil {
		e.JobID = cmp.Or(e.JobID, j.ID)
		e.Client = cmp.Or(e.Client, j.Client)
		e.Blueprint = cmp.Or(e.Blueprint, j.Blueprint)
	}
	e.Job = nil
	if len(e.Detail) == 0 {
		e.Detail = nil
	} else {
		b, err := json.Marshal(e.Detail)
		must(t, err)
		e.Detail = nil
		must(t, json.Unmarshal(b, &e.Detail))
	}
	return e
}

func sameEvents(t *testing.T, got []history.Event, want ...history.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n got %s\nwant %s", len(got), len(want), dump(got), dump(want))
	}
	for i := range want {
		w := expected(t, want[i])
		if !reflect.DeepEqual(got[i], w) {
			t.Fatalf("event %d:\n got %#v\nwant %#v", i, got[i], w)
		}
	}
}

func dump(evs []history.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("[%s %s %s] ", e.Type, e.Time.Format(time.RFC3339Nano), e.State)
	}
	return s
}

// snapshot is a job view as the engine would send it.
func snapshot(id, client, bp string, status protocol.JobStatus, created, updated time.Time) *protocol.Job {
	c, u := created, updated
	j := &protocol.Job{
		ID: id, Client: client, Blueprint: bp, Status: status, CurrentState: string(status) + "-state",
		InitialData: map[string]any{"file": "a.mp4"}, CreatedAt: &c, UpdatedAt: &u,
	}
	if status.Terminal() {
		f := updated
		j.FinishedAt = &f
		j.Result = map[string]any{"ok": status == protocol.StatusFinished}
	}
	return j
}

func jobEvent(j *protocol.Job) history.Event {
	e := event(history.StateEntered, j.ID, *j.UpdatedAt)
	e.Job = j
	if j.Status.Terminal() {
		e.Type = history.JobEnded
	}
	return e
}

func ids(jobs []protocol.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
