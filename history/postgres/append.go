package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/jackc/pgx/v5"
)

// Rows go in as arrays, one per column, unnested in their order: one round
// trip per statement whatever the batch size.
const insertEvents = `INSERT INTO history_events
	(id, occurred_at, event_type, job_id, blueprint, client, state, prev_state, task_id, worker_id, attempt, detail)
	SELECT id, occurred_at, event_type, job_id, blueprint, client, state, prev_state, task_id, worker_id, attempt, detail
	FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::bigint[], $12::jsonb[])
		WITH ORDINALITY AS u(id, occurred_at, event_type, job_id, blueprint, client, state, prev_state,
			task_id, worker_id, attempt, detail, ord)
	ORDER BY ord
	ON CONFLICT (id) DO NOTHING`

const upsertJobs = `INSERT INTO history_jobs
	(id, client, blueprint, status, current_state, error_message, parent_job_id, created_at, updated_at, finished_at, view, live_store)
	SELECT id, client, blueprint, status, current_state, error_message, parent_job_id, created_at, updated_at, finished_at, view, live_store
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::jsonb[], $12::text[])
		WITH ORDINALITY AS u(id, client, blueprint, status, current_state, error_message, parent_job_id,
			created_at, updated_at, finished_at, view, live_store, ord)
	ORDER BY ord
	ON CONFLICT (id) DO UPDATE SET
		client = excluded.client, blueprint = excluded.blueprint, status = excluded.status,
		current_state = excluded.current_state, error_message = excluded.error_message,
		parent_job_id = excluded.parent_job_id, updated_at = excluded.updated_at,
		finished_at = excluded.finished_at, view = excluded.view,
		live_store = CASE WHEN excluded.live_store = '' THEN history_jobs.live_store ELSE excluded.live_store END
	WHERE history_jobs.updated_at <= excluded.updated_at`

// conflictRetries is how often Append reruns a transaction that lost a
// deadlock (two batches inserting the same new event IDs in different
// orders) before it reports the error.
const conflictRetries = 5

// Append implements history.Store: one transaction per call.
func (s *Store) Append(ctx context.Context, events []history.Event) error {
	encs, err := history.EncodeAll(events)
	if err != nil || len(encs) == 0 {
		return err
	}
	ev := eventColumns(encs)
	jobs := jobColumns(history.Latest(encs))
	for attempt := 0; ; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, insertEvents, ev...); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			if jobs != nil {
				if _, err := tx.Exec(ctx, upsertJobs, jobs...); err != nil {
					return fmt.Errorf("upsert jobs: %w", err)
				}
			}
			return nil
		})
		if err == nil || !conflict(err) || attempt == conflictRetries || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("history/postgres: append %d events: %w", len(encs), classify(err))
	}
	return nil
}

func eventColumns(encs []history.Encoded) []any {
	n := len(encs)
	var (
		ids, types, jobIDs, bps, clients = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		states, prevs, tasks, workers    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times                            = make([]time.Time, n)
		attempts                         = make([]int64, n)
		details                          = make([][]byte, n)
	)
	for i, e := range encs {
		ids[i], times[i], types[i], jobIDs[i], bps[i], clients[i] = e.ID, e.Time, e.Type, e.JobID, e.Blueprint, e.Client
		states[i], prevs[i], tasks[i], workers[i] = e.State, e.PrevState, e.TaskID, e.WorkerID
		attempts[i], details[i] = int64(e.Attempt), e.Detail
	}
	return []any{ids, times, types, jobIDs, bps, clients, states, prevs, tasks, workers, attempts, details}
}

// jobColumns orders the summaries by ID, so that concurrent batches lock
// job rows in the same order and cannot deadlock on them.
func jobColumns(jobs []*history.Summary) []any {
	if len(jobs) == 0 {
		return nil
	}
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, func(a, b *history.Summary) int { return strings.Compare(a.ID, b.ID) })
	n := len(jobs)
	var (
		ids, clients, bps, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		states, errs, parents       = make([]string, n), make([]string, n), make([]string, n)
		created, updated            = make([]time.Time, n), make([]time.Time, n)
		finished                    = make([]*time.Time, n)
		views                       = make([][]byte, n)
		stores                      = make([]string, n)
	)
	for i, j := range jobs {
		ids[i], clients[i], bps[i], statuses[i] = j.ID, j.Client, j.Blueprint, j.Status
		states[i], errs[i], parents[i] = j.CurrentState, j.ErrorMessage, j.ParentJobID
		created[i], updated[i], finished[i], views[i], stores[i] = j.CreatedAt, j.UpdatedAt, j.FinishedAt, j.View, j.LiveStore
	}
	return []any{ids, clients, bps, statuses, states, errs, parents, created, updated, finished, views, stores}
}

// SeeLiveStore implements history.LiveStores.
func (s *Store) SeeLiveStore(ctx context.Context, id string, t time.Time) error {
	const q = `INSERT INTO history_live_stores (id, last_seen) VALUES ($1, $2)
	ON CONFLICT (id) DO UPDATE SET last_seen = greatest(history_live_stores.last_seen, excluded.last_seen)`
	if _, err := s.pool.Exec(ctx, q, history.Clean(id), t); err != nil {
		return fmt.Errorf("history/postgres: see live store %s: %w", id, err)
	}
	return nil
}
