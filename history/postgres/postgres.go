// Package postgres is the history.Store on PostgreSQL (github.com/jackc/pgx/v5).
// Open creates and migrates its tables (history_events, history_jobs,
// history_live_stores, history_schema_migrations) in the connection's schema, or in
// Options.Schema; several orchestrators may open the same schema at once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune Open. Zero fields take the defaults.
type Options struct {
	// Schema, when set, is where the tables live: it becomes the
	// connections' search_path, and is created when missing. Otherwise the
	// URL's search_path (or the server default) decides.
	Schema string
	// StartupRetry is how long Open keeps trying while the server cannot be
	// reached (default 30s; negative: do not retry). ctx bounds it too.
	StartupRetry time.Duration
	// MaxConns caps the connection pool (default: pgxpool's).
	MaxConns int32
}

// Store is a history.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ history.Store = (*Store)(nil)

// Open connects to the database at url (postgres:// or postgresql://, any
// parameter pgx understands) and brings the schema up to date.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("history/postgres: bad URL %s: %w", redact(url), err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("history/postgres: connect %s: %w", redact(url), err)
	}
	s := &Store{pool: pool}
	retry := opts.StartupRetry
	if retry == 0 {
		retry = 30 * time.Second
	}
	deadline := time.Now().Add(retry)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err = s.migrate(ctx, opts.Schema)
		if err == nil {
			return s, nil
		}
		if !unreachable(err) || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	pool.Close()
	return nil, fmt.Errorf("history/postgres: open %s: %w", redact(url), err)
}

// unreachable reports whether err means the server could not be reached
// (as opposed to an answer from it).
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 57P03: the server is starting up; 08*: connection exceptions.
		return pgErr.Code == "57P03" || pgErr.Code[:2] == "08"
	}
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// redact hides the password of a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Close implements history.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// classify marks errors PostgreSQL will repeat however often the batch is
// retried: data exceptions (22), integrity violations (23), program limits
// (54).
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "54":
			return fmt.Errorf("%w: %w", history.ErrInvalidEvent, err)
		}
	}
	return err
}

// conflict reports a deadlock or serialization failure, after which the
// transaction can simply run again.
func conflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
