package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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
	seq         INTEGER PRIMARY KEY,     -- storage order, breaks ties of occurred_at
	id          TEXT    NOT NULL UNIQUE, -- event UUID
	occurred_at INTEGER NOT NULL,        -- when it happened, Unix nanoseconds UTC
	event_type  TEXT    NOT NULL,
	job_id      TEXT    NOT NULL DEFAULT '',
	blueprint   TEXT    NOT NULL DEFAULT '',
	client      TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL DEFAULT '',
	prev_state  TEXT    NOT NULL DEFAULT '',
	task_id     TEXT    NOT NULL DEFAULT '',
	worker_id   TEXT    NOT NULL DEFAULT '',
	attempt     INTEGER NOT NULL DEFAULT 0,
	detail      TEXT                     -- JSON object, NULL when none
);
CREATE INDEX history_events_job ON history_events (job_id, occurred_at, seq) WHERE job_id <> '';
CREATE INDEX history_events_worker ON history_events (worker_id, occurred_at) WHERE worker_id <> '';
CREATE INDEX history_events_time ON history_events (occurred_at);
`},
	{2, "jobs", `
CREATE TABLE history_jobs (
	id            TEXT    PRIMARY KEY,
	client        TEXT    NOT NULL DEFAULT '',
	blueprint     TEXT    NOT NULL DEFAULT '',
	status        TEXT    NOT NULL DEFAULT '',
	current_state TEXT    NOT NULL DEFAULT '',
	error_message TEXT    NOT NULL DEFAULT '',
	parent_job_id TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,          -- Unix nanoseconds UTC
	updated_at    INTEGER NOT NULL,
	finished_at   INTEGER,
	view          TEXT    NOT NULL           -- protocol.Job as JSON
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
ALTER TABLE history_jobs ADD COLUMN live_store TEXT NOT NULL DEFAULT '';
CREATE TABLE history_live_stores (
	id        TEXT    PRIMARY KEY,
	last_seen INTEGER NOT NULL -- Unix nanoseconds UTC
);
`},
}

// migrate brings the schema up to date in one IMMEDIATE transaction: the
// write lock is taken before the version is read, so orchestrators starting
// together apply each step once (the others wait, busy_timeout, then find
// nothing to do).
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return fmt.Errorf("history/sqlite: migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS history_schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("history/sqlite: migrate: create version table: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM history_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("history/sqlite: migrate: read version: %w", err)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("history/sqlite: migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO history_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("history/sqlite: record migration %d: %w", m.version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history/sqlite: migrate: commit: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM history_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("history/sqlite: schema version: %w", err)
	}
	return v, nil
}

// LatestVersion is the schema version this package migrates to.
func LatestVersion() int { return migrations[len(migrations)-1].version }
