package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
)

const insertEvent = `INSERT INTO history_events
	(id, occurred_at, event_type, job_id, blueprint, client, state, prev_state, task_id, worker_id, attempt, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

const upsertJob = `INSERT INTO history_jobs
	(id, client, blueprint, status, current_state, error_message, parent_job_id, created_at, updated_at, finished_at, view, live_store)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		client = excluded.client, blueprint = excluded.blueprint, status = excluded.status,
		current_state = excluded.current_state, error_message = excluded.error_message,
		parent_job_id = excluded.parent_job_id, updated_at = excluded.updated_at,
		finished_at = excluded.finished_at, view = excluded.view,
		live_store = CASE WHEN excluded.live_store = '' THEN history_jobs.live_store ELSE excluded.live_store END
	WHERE excluded.updated_at >= history_jobs.updated_at`

// Append implements history.Store: one IMMEDIATE transaction per call.
func (s *Store) Append(ctx context.Context, events []history.Event) error {
	encs, err := history.EncodeAll(events)
	if err != nil || len(encs) == 0 {
		return err
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return fmt.Errorf("history/sqlite: append: %w", ctx.Err())
	}
	if err := retryBusy(ctx, func() error { return s.append(ctx, encs) }); err != nil {
		return fmt.Errorf("history/sqlite: append %d events: %w", len(encs), classify(err))
	}
	return nil
}

func (s *Store) append(ctx context.Context, encs []history.Encoded) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins, err := tx.PrepareContext(ctx, insertEvent)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, e := range encs {
		if _, err := ins.ExecContext(ctx, e.ID, nanos(e.Time), e.Type, e.JobID, e.Blueprint, e.Client,
			e.State, e.PrevState, e.TaskID, e.WorkerID, e.Attempt, nullText(e.Detail)); err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
	}
	if jobs := history.Latest(encs); len(jobs) > 0 {
		up, err := tx.PrepareContext(ctx, upsertJob)
		if err != nil {
			return err
		}
		defer up.Close()
		for _, j := range jobs {
			var finished sql.NullInt64
			if j.FinishedAt != nil {
				finished = sql.NullInt64{Int64: nanos(*j.FinishedAt), Valid: true}
			}
			if _, err := up.ExecContext(ctx, j.ID, j.Client, j.Blueprint, j.Status, j.CurrentState, j.ErrorMessage,
				j.ParentJobID, nanos(j.CreatedAt), nanos(j.UpdatedAt), finished, string(j.View), j.LiveStore); err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
		}
	}
	return tx.Commit()
}

func nullText(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

// SeeLiveStore implements history.LiveStores.
func (s *Store) SeeLiveStore(ctx context.Context, id string, t time.Time) error {
	const q = `INSERT INTO history_live_stores (id, last_seen) VALUES (?, ?)
	ON CONFLICT (id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return fmt.Errorf("history/sqlite: see live store: %w", ctx.Err())
	}
	err := retryBusy(ctx, func() error {
		_, err := s.db.ExecContext(ctx, q, history.Clean(id), nanos(t))
		return err
	})
	if err != nil {
		return fmt.Errorf("history/sqlite: see live store %s: %w", id, classify(err))
	}
	return nil
}
