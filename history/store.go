package history

import (
	"context"
	"errors"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Errors returned by every backend and by the Recorder.
var (
	// ErrNotFound is store.ErrNotFound, so that one check serves the live
	// store and history.
	ErrNotFound = store.ErrNotFound
	// ErrInvalidEvent marks an event that can never be stored (no type, an
	// ID that is not a UUID, a Detail that does not encode as JSON, data the
	// database refuses). Retrying it is pointless.
	ErrInvalidEvent = errors.New("invalid history event")
	// ErrInvalidCursor marks a ListJobs cursor that no ListJobs returned.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrClosed is returned by a Recorder that is closed or closing.
	ErrClosed = errors.New("history recorder closed")
)

// Store is a history backend. Every method is safe for concurrent use.
type Store interface {
	// Append writes events in one transaction: all or none. It is
	// idempotent on Event.ID: an event whose ID is already stored is
	// skipped (the stored one is kept). Events that carry a Job update the
	// job's summary, unless the stored summary is newer (by the job's
	// UpdatedAt). An invalid event fails the whole call with an error
	// wrapping ErrInvalidEvent.
	Append(ctx context.Context, events []Event) error
	// JobEvents returns a job's events in the order they happened (by Time,
	// then by the order they were stored), or ErrNotFound when there are
	// none.
	JobEvents(ctx context.Context, jobID string) ([]Event, error)
	// Job returns the latest summary of a job, or ErrNotFound.
	Job(ctx context.Context, id string) (*protocol.Job, error)
	// ListJobs returns job summaries newest first (by creation time, then
	// by ID descending), and the cursor of the next page ("" on the last
	// page). A cursor is stable: jobs created after the first page was read
	// do not shift later pages.
	ListJobs(ctx context.Context, f JobFilter) ([]protocol.Job, string, error)
	// Close releases the backend's resources.
	Close() error
}

// Page sizes of ListJobs.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// JobFilter selects jobs for ListJobs. Zero fields match everything.
type JobFilter struct {
	Client    string // owner client name
	Status    protocol.JobStatus
	Blueprint string
	From      time.Time // created at or after
	To        time.Time // created before
	Limit     int       // 0 means DefaultLimit; at most MaxLimit
	Cursor    string    // NextCursor of the previous page
	// LiveStore, when set, keeps the jobs recorded in that live store
	// (Event.LiveStore); pointing at "", those recorded without one.
	LiveStore *string
}

// UnfinishedSQL lists, as SQL string literals, the statuses of a job that
// has not ended (those that are not protocol.JobStatus.Terminal).
const UnfinishedSQL = `'pending', 'running', 'waiting_for_worker', 'waiting_for_human', 'waiting_for_parallel_tasks', 'waiting_for_sub_job'`

// LiveStores is implemented by the backends that remember which live store
// (a Redis deployment, an orchestrator's memory store) holds each job, so
// that orchestrators with their own live stores can share one history and
// still find the jobs of a live store that is gone.
type LiveStores interface {
	// SeeLiveStore records that the live store id is in use at t.
	SeeLiveStore(ctx context.Context, id string, t time.Time) error
	// StaleLiveStores returns the live stores that hold unfinished jobs
	// and were not seen at or after seenBefore (or never).
	StaleLiveStores(ctx context.Context, seenBefore time.Time) ([]string, error)
}

// Page returns the page size and the position after which the page starts
// (nil for the first page), or an error wrapping ErrInvalidCursor. The
// cursor's time is truncated to the microsecond like stored times, so that
// a cursor of the live store (nanoseconds) skips the job it names.
func (f JobFilter) Page() (limit int, after *Cursor, err error) {
	limit = f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if f.Cursor == "" {
		return limit, nil, nil
	}
	c, err := ParseCursor(f.Cursor)
	if err != nil {
		return 0, nil, err
	}
	c.CreatedAt = normTime(c.CreatedAt)
	return limit, &c, nil
}

// NextPage cuts jobs, read with a limit of limit+1, to one page of limit
// and returns the cursor of the next page, or "" when this is the last.
func NextPage(jobs []protocol.Job, limit int) ([]protocol.Job, string) {
	if len(jobs) <= limit {
		return jobs, ""
	}
	jobs = jobs[:limit]
	last := jobs[limit-1]
	return jobs, CursorAt(*last.CreatedAt, last.ID).String()
}

// Range returns From and To as backends compare them: in UTC, truncated to
// the microsecond like stored times. Zero stays zero (no bound).
func (f JobFilter) Range() (from, to time.Time) {
	if !f.From.IsZero() {
		from = normTime(f.From)
	}
	if !f.To.IsZero() {
		to = normTime(f.To)
	}
	return from, to
}

// Nop is the Store of a disabled history: it stores nothing and finds
// nothing.
type Nop struct{}

var _ Store = Nop{}

// Append implements Store.
func (Nop) Append(context.Context, []Event) error { return nil }

// JobEvents implements Store.
func (Nop) JobEvents(context.Context, string) ([]Event, error) { return nil, ErrNotFound }

// Job implements Store.
func (Nop) Job(context.Context, string) (*protocol.Job, error) { return nil, ErrNotFound }

// ListJobs implements Store.
func (Nop) ListJobs(_ context.Context, f JobFilter) ([]protocol.Job, string, error) {
	if _, _, err := f.Page(); err != nil {
		return nil, "", err
	}
	return nil, "", nil
}

// Close implements Store.
func (Nop) Close() error { return nil }
