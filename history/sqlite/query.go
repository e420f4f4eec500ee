package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// JobEvents implements history.Store.
func (s *Store) JobEvents(ctx context.Context, jobID string) ([]history.Event, error) {
	if jobID == "" {
		return nil, fmt.Errorf("history: events of job %q: %w", jobID, history.ErrNotFound)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, occurred_at, event_type, job_id, blueprint, client, state, prev_state,
		task_id, worker_id, attempt, detail
		FROM history_events WHERE job_id = ? AND job_id <> '' ORDER BY occurred_at, seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: events of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []history.Event
	for rows.Next() {
		var e history.Event
		var t int64
		var detail sql.NullString
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.JobID, &e.Blueprint, &e.Client, &e.State, &e.PrevState,
			&e.TaskID, &e.WorkerID, &e.Attempt, &detail); err != nil {
			return nil, fmt.Errorf("history/sqlite: events of job %s: %w", jobID, err)
		}
		e.Time = fromNanos(t)
		if e.Detail, err = history.DecodeDetail([]byte(detail.String)); err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history/sqlite: events of job %s: %w", jobID, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("history: events of job %s: %w", jobID, history.ErrNotFound)
	}
	return out, nil
}

const jobColumns = `id, created_at, updated_at, finished_at, view`

// Job implements history.Store.
func (s *Store) Job(ctx context.Context, id string) (*protocol.Job, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM history_jobs WHERE id = ?`, id)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("history: job %s: %w", id, history.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: job %s: %w", id, err)
	}
	return &j, nil
}

// ListJobs implements history.Store.
func (s *Store) ListJobs(ctx context.Context, f history.JobFilter) ([]protocol.Job, string, error) {
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	cond := func(c string, a ...any) { where, args = append(where, c), append(args, a...) }
	if f.Client != "" {
		cond("client = ?", f.Client)
	}
	if f.Status != "" {
		cond("status = ?", string(f.Status))
	}
	if f.Blueprint != "" {
		cond("blueprint = ?", f.Blueprint)
	}
	if f.LiveStore != nil {
		cond("live_store = ?", *f.LiveStore)
	}
	from, to := f.Range()
	if !from.IsZero() {
		cond("created_at >= ?", nanos(from))
	}
	if !to.IsZero() {
		cond("created_at < ?", nanos(to))
	}
	if after != nil {
		n := nanos(after.CreatedAt)
		cond("(created_at < ? OR (created_at = ? AND id < ?))", n, n, after.ID)
	}
	q := `SELECT ` + jobColumns + ` FROM history_jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("history/sqlite: list jobs: %w", err)
	}
	defer rows.Close()
	var out []protocol.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, "", fmt.Errorf("history/sqlite: list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("history/sqlite: list jobs: %w", err)
	}
	out, next := history.NextPage(out, limit)
	return out, next, nil
}

type scanner interface{ Scan(dest ...any) error }

// scanJob reads a summary: the stored view, with the times of the columns
// (created_at never moves once stored).
func scanJob(row scanner) (protocol.Job, error) {
	var id, view string
	var created, updated int64
	var finished sql.NullInt64
	if err := row.Scan(&id, &created, &updated, &finished, &view); err != nil {
		return protocol.Job{}, err
	}
	j, err := history.DecodeJob([]byte(view))
	if err != nil {
		return j, fmt.Errorf("job %s: %w", id, err)
	}
	c, u := fromNanos(created), fromNanos(updated)
	j.ID, j.CreatedAt, j.UpdatedAt, j.FinishedAt = id, &c, &u, nil
	if finished.Valid {
		f := fromNanos(finished.Int64)
		j.FinishedAt = &f
	}
	return j, nil
}

// StaleLiveStores implements history.LiveStores.
func (s *Store) StaleLiveStores(ctx context.Context, seenBefore time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, staleLiveStores, nanos(seenBefore))
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: stale live stores: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("history/sqlite: stale live stores: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history/sqlite: stale live stores: %w", err)
	}
	return ids, nil
}

// staleLiveStores lists the live stores of unfinished jobs not seen since
// ?. The statuses are those that are not protocol.JobStatus.Terminal,
// listed so that the status index serves the query.
const staleLiveStores = `SELECT DISTINCT j.live_store FROM history_jobs j
	WHERE j.status IN (` + history.UnfinishedSQL + `) AND j.live_store <> ''
	AND NOT EXISTS (SELECT 1 FROM history_live_stores s WHERE s.id = j.live_store AND s.last_seen >= ?)
	ORDER BY j.live_store`
