package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// The reads below are the client API's isolation rules as Go calls, for
// the routes here and for the web console (internal/console): owner is the
// client whose jobs may be seen, or AnyOwner for operators (the admin
// token). Another client's job is reported exactly like a missing one
// (engine.ErrJobNotFound).

// AnyOwner lets a read see every client's jobs (operators only).
const AnyOwner = "\x00any"

// ErrInvalidQuery marks a job listing's parameters that no listing can
// take (400).
var ErrInvalidQuery = errors.New("invalid query")

// queryError is an ErrInvalidQuery whose text is the message alone.
type queryError string

func (e queryError) Error() string        { return string(e) }
func (e queryError) Is(target error) bool { return target == ErrInvalidQuery }

func badQuery(format string, args ...any) error { return queryError(fmt.Sprintf(format, args...)) }

// JobQuery selects jobs for ListJobs.
type JobQuery struct {
	Owner     string // client name, or AnyOwner
	Status    string
	Blueprint string
	From, To  time.Time // created in [From, To) (history only)
	Limit     int       // 1 to 500 (50)
	Cursor    string    // NextCursor of the previous page
	// Live reads the live store even with a history database: it holds
	// every unfinished job, with its current status, while history's
	// summary of a job may lag behind it.
	Live bool
}

// ParseJobQuery reads the listing parameters of GET /api/v1/jobs (limit,
// cursor, status, blueprint, from, to); Owner is left to the caller.
func ParseJobQuery(q url.Values) (JobQuery, error) {
	out := JobQuery{Limit: 50, Status: q.Get("status"), Blueprint: q.Get("blueprint"), Cursor: q.Get("cursor")}
	if q.Has("offset") {
		// Refused rather than ignored: a client paging by offset would
		// read the first page forever.
		return out, badQuery("offset is not supported: page with cursor, set to the next_cursor of the previous page")
	}
	limit, ok := intParam(q, "limit", 1, 500, 50)
	if !ok {
		return out, badQuery("Invalid limit parameter: an integer from 1 to 500")
	}
	out.Limit = limit
	for name, dst := range map[string]*time.Time{"from": &out.From, "to": &out.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return out, badQuery("Invalid %s parameter: an RFC 3339 time such as 2026-11-26T15:04:05Z", name)
			}
			*dst = t
		}
	}
	return out, nil
}

// filterOwner is the owner filter of the stores: "" matches every client.
func filterOwner(owner string) string {
	if owner == AnyOwner {
		return ""
	}
	return owner
}

// owns reports whether owner may see a job of client.
func owns(owner, client string) bool { return owner == AnyOwner || owner == client }

// ListJobs lists the jobs owner may see, newest first: from the history
// database when it is enabled (jobs the live store has expired included),
// else from the live store. Bad parameters are errors wrapping
// ErrInvalidQuery.
func (s *Server) ListJobs(ctx context.Context, q JobQuery) (protocol.JobList, error) {
	if q.Owner == "" {
		return protocol.JobList{}, errors.New("api: ListJobs needs an owner")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	out := protocol.JobList{Jobs: []protocol.Job{}}
	var err error
	fromHistory := s.opts.History != nil && !q.Live
	if fromHistory {
		// History holds every job, including those the live store has
		// expired; flush so that a job created a moment ago is listed.
		hctx, cancel := s.historyContext(ctx)
		defer cancel()
		s.flushHistory(hctx)
		out.Jobs, out.NextCursor, err = s.opts.History.ListJobs(hctx, history.JobFilter{
			Client: filterOwner(q.Owner), Status: protocol.JobStatus(q.Status), Blueprint: q.Blueprint,
			From: q.From, To: q.To, Limit: q.Limit, Cursor: q.Cursor,
		})
		if err != nil && !strings.Contains(err.Error(), "cursor") {
			err = historyFailed(ctx, err)
			// The live store can answer a first page without a time range.
			fromHistory = !(q.Cursor == "" && q.From.IsZero() && q.To.IsZero())
			if !fromHistory {
				s.log.WarnContext(ctx, "history unavailable: listing live jobs only", "error", err)
				err = nil
			}
		}
	}
	if !fromHistory {
		if !q.From.IsZero() || !q.To.IsZero() {
			return out, badQuery("from and to need the history database (HISTORY_DATABASE_URI)")
		}
		var jobs []*store.Job
		jobs, out.NextCursor, err = s.eng.ListJobs(ctx, store.JobFilter{
			Client: filterOwner(q.Owner), Status: q.Status, Blueprint: q.Blueprint, Limit: q.Limit, Cursor: q.Cursor,
		})
		for _, j := range jobs {
			out.Jobs = append(out.Jobs, JobView(j))
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "cursor") {
			return out, badQuery("Invalid cursor parameter")
		}
		return out, err
	}
	if out.Jobs == nil {
		out.Jobs = []protocol.Job{}
	}
	for i := range out.Jobs {
		redactJobView(&out.Jobs[i])
	}
	return out, nil
}

// JobFor returns the client-API view of a job owner may see, from the live
// store or, once the live store has expired it, from history.
func (s *Server) JobFor(ctx context.Context, owner, id string) (protocol.Job, error) {
	j, err := s.eng.GetJob(ctx, id)
	switch {
	case err == nil && owner != "" && owns(owner, j.Client.Name):
		view := fullJobView(j)
		if view.Approval != nil && j.Approval.Token != "" {
			view.Approval.URL = protocol.ApprovalURL(s.opts.PublicURL, j.ID, j.Approval.Token)
		}
		return view, nil
	case err == nil || !errors.Is(err, engine.ErrJobNotFound) || s.opts.History == nil:
		if err == nil {
			err = engine.ErrJobNotFound
		}
		return protocol.Job{}, err
	}
	hctx, cancel := s.historyContext(ctx)
	defer cancel()
	view, err := s.opts.History.Job(hctx, id)
	if errors.Is(err, history.ErrNotFound) || (err == nil && (owner == "" || !owns(owner, view.Client))) {
		err = engine.ErrJobNotFound
	} else if err != nil {
		err = historyFailed(ctx, err)
	}
	if err != nil {
		return protocol.Job{}, err
	}
	redactJobView(view)
	return *view, nil
}

// JobEventsFor returns the audit trail of a job owner may see, oldest
// first; empty without a history database.
func (s *Server) JobEventsFor(ctx context.Context, owner, id string) ([]history.Event, error) {
	if _, err := s.JobFor(ctx, owner, id); err != nil {
		return nil, err
	}
	if s.opts.History == nil {
		return []history.Event{}, nil
	}
	hctx, cancel := s.historyContext(ctx)
	defer cancel()
	s.flushHistory(hctx)
	events, err := s.opts.History.JobEvents(hctx, id)
	if errors.Is(err, history.ErrNotFound) {
		events, err = []history.Event{}, nil
	}
	if err != nil {
		return nil, historyFailed(ctx, err)
	}
	for i := range events {
		redactHistoryEvent(&events[i])
	}
	return events, nil
}

// IsAdminToken reports whether token is the admin token (ADMIN_TOKEN),
// compared in constant time; always false while the admin API is disabled.
func (s *Server) IsAdminToken(token string) bool {
	return s.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.AdminToken)) == 1
}

// HistoryEnabled reports whether the server reads a history database.
func (s *Server) HistoryEnabled() bool { return s.opts.History != nil }
