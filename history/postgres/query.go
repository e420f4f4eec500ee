package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/jackc/pgx/v5"
)

// JobEvents implements history.Store.
func (s *Store) JobEvents(ctx context.Context, jobID string) ([]history.Event, error) {
	if jobID == "" {
		return nil, fmt.Errorf("history: events of job %q: %w", jobID, history.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, occurred_at, event_type, job_id, blueprint, client, state,
		prev_state, task_id, worker_id, attempt, detail
		FROM history_events WHERE job_id = $1 AND job_id <> '' ORDER BY occurred_at, seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("history/postgres: events of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []history.Event
	for rows.Next() {
		var e history.Event
		var attempt int64
		var detail []byte
		if err := rows.Scan(&e.ID, &e.Time, &e.Type, &e.JobID, &e.Blueprint, &e.Client, &e.State, &e.PrevState,
			&e.TaskID, &e.WorkerID, &attempt, &detail); err != nil {
			return nil, fmt.Errorf("history/postgres: events of job %s: %w", jobID, err)
		}
		e.Time, e.Attempt = e.Time.UTC(), int(attempt)
		if e.Detail, err = history.DecodeDetail(detail); err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history/postgres: events of job %s: %w", jobID, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("history: events of job %s: %w", jobID, history.ErrNotFound)
	}
	return out, nil
}

const jobSelect = `SELECT id, created_at, updated_at, finished_at, view FROM history_jobs`

// Job implements history.Store.
func (s *Store) Job(ctx context.Context, id string) (*protocol.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, jobSelect+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("history: job %s: %w", id, history.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history/postgres: job %s: %w", id, err)
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
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Client != "" {
		where = append(where, "client = "+arg(f.Client))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.Blueprint != "" {
		where = append(where, "blueprint = "+arg(f.Blueprint))
	}
	if f.LiveStore != nil {
		where = append(where, "live_store = "+arg(*f.LiveStore))
	}
	from, to := f.Range()
	if !from.IsZero() {
		where = append(where, "created_at >= "+arg(from))
	}
	if !to.IsZero() {
		where = append(where, "created_at < "+arg(to))
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s)", arg(after.CreatedAt), arg(after.ID)))
	}
	q := jobSelect
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("history/postgres: list jobs: %w", err)
	}
	defer rows.Close()
	var out []protocol.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, "", fmt.Errorf("history/postgres: list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("history/postgres: list jobs: %w", err)
	}
	out, next := history.NextPage(out, limit)
	return out, next, nil
}

// scanJob reads a summary: the stored view, with the times of the columns
// (created_at never moves once stored).
func scanJob(row pgx.Row) (protocol.Job, error) {
	var id string
	var created, updated time.Time
	var finished *time.Time
	var view []byte
	if err := row.Scan(&id, &created, &updated, &finished, &view); err != nil {
		return protocol.Job{}, err
	}
	j, err := history.DecodeJob(view)
	if err != nil {
		return j, fmt.Errorf("job %s: %w", id, err)
	}
	c, u := created.UTC(), updated.UTC()
	j.ID, j.CreatedAt, j.UpdatedAt, j.FinishedAt = id, &c, &u, nil
	if finished != nil {
		f := finished.UTC()
		j.FinishedAt = &f
	}
	return j, nil
}

// StaleLiveStores implements history.LiveStores: the live stores of
// unfinished jobs not seen since seenBefore.
func (s *Store) StaleLiveStores(ctx context.Context, seenBefore time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT j.live_store FROM history_jobs j
	WHERE j.status IN (`+history.UnfinishedSQL+`) AND j.live_store <> ''
	AND NOT EXISTS (SELECT 1 FROM history_live_stores s WHERE s.id = j.live_store AND s.last_seen >= $1)
	ORDER BY j.live_store`, seenBefore)
	if err != nil {
		return nil, fmt.Errorf("history/postgres: stale live stores: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("history/postgres: stale live stores: %w", err)
	}
	return ids, nil
}
