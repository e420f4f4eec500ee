package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migration is one step of the schema. Steps are applied in order, each
// once, and recorded in history_schema_migrations.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "events", `
CREATE TABLE history_events (
	seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- storage order, breaks ties
	id          uuid        NOT NULL UNIQUE,
	occurred_at timestamptz NOT NULL, -- when it happened
	event_type  text        NOT NULL,
	job_id      text        NOT NULL DEFAULT '',
	blueprint   text        NOT NULL DEFAULT '',
	client      text        NOT NULL DEFAULT '',
	state       text        NOT NULL DEFAULT '',
	prev_state  text        NOT NULL DEFAULT '',
	task_id     text        NOT NULL DEFAULT '',
	worker_id   text        NOT NULL DEFAULT '',
	attempt     bigint      NOT NULL DEFAULT 0,
	detail      jsonb
);
CREATE INDEX history_events_job ON history_events (job_id, occurred_at, seq) WHERE job_id <> '';
CREATE INDEX history_events_worker ON history_events (worker_id, occurred_at) WHERE worker_id <> '';
CREATE INDEX history_events_time ON history_events (occurred_at);
`},
	{2, "jobs", `
CREATE TABLE history_jobs (
	id            text COLLATE "C" PRIMARY KEY, -- byte order, like the other backends
	client        text        NOT NULL DEFAULT '',
	blueprint     text        NOT NULL DEFAULT '',
	status        text        NOT NULL DEFAULT '',
	current_state text        NOT NULL DEFAULT '',
	error_message text        NOT NULL DEFAULT '',
	parent_job_id text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	finished_at   timestamptz,
	view          jsonb       NOT NULL -- protocol.Job
);
CREATE INDEX history_jobs_created ON history_jobs (created_at DESC, id DESC);
CREATE INDEX history_jobs_client ON history_jobs (client, created_at DESC, id DESC);
`},
	// Listing by status (the console's counts, ?status=): without these a
	// rare status scans every job.
	{3, "jobs by status", `
CREATE INDEX history_jobs_status ON history_jobs (status, created_at DESC, id DESC);
CREATE INDEX history_jobs_client_status ON history_jobs (client, status, created_at DESC, id DESC);
`},
	// Orchestrators with their own live stores share a history: a job's
	// live store, and when each live store was last seen, tell the jobs
	// of a live store that is gone from those of one that runs elsewhere.
	{4, "live stores", `
ALTER TABLE history_jobs ADD COLUMN live_store text NOT NULL DEFAULT '';
CREATE TABLE history_live_stores (
	id        text COLLATE "C" PRIMARY KEY,
	last_seen timestamptz NOT NULL
);
`},
}

// lockPrefix names the advisory lock that serialises migrations of one
// schema (the key is a hash of it and the schema name).
const lockPrefix = "avtomatika-history-migrate:"

// migrate brings the schema up to date in one transaction holding a
// transaction-level advisory lock, so that orchestrators starting together
// apply each step once: the others wait for the lock, then find nothing to
// do. A failed step rolls everything back.
func (s *Store) migrate(ctx context.Context, schema string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if schema == "" {
			var cur *string
			if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
				return fmt.Errorf("current schema: %w", err)
			}
			if cur == nil {
				return errors.New("the search_path names no existing schema (create it, or set Options.Schema)")
			}
			schema = *cur
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, lockPrefix+schema); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return fmt.Errorf("schema %s: %w", schema, err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS history_schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("create version table: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM history_schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read version: %w", err)
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO history_schema_migrations (version, name) VALUES ($1, $2)`,
				m.version, m.name); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the highest migration applied to the schema.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM history_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("history/postgres: schema version: %w", err)
	}
	return v, nil
}

// LatestVersion is the schema version this package migrates to.
func LatestVersion() int { return migrations[len(migrations)-1].version }
