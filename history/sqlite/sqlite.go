// Package sqlite is the history.Store on an SQLite file (modernc.org/sqlite,
// no cgo): the embedded default. The file is in WAL mode with
// synchronous=FULL, so an event whose Append returned survives a kill of the
// process (and a power cut). Several processes may share the file: writes
// take SQLite's write lock (BEGIN IMMEDIATE) and wait for it up to the busy
// timeout.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a write waits for another connection or process
// that holds the write lock.
const BusyTimeout = 5 * time.Second

// Store is a history.Store on an SQLite file.
type Store struct {
	db     *sql.DB
	writer chan struct{} // one writer at a time in this process
}

var _ history.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path and brings
// its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("history/sqlite: %q is not a file path", path)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	err = retryBusy(ctx, func() error { return walMode(ctx, db) })
	if err == nil {
		err = retryBusy(ctx, func() error { return migrate(ctx, db) })
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (database %s)", err, path)
	}
	return &Store{db: db, writer: make(chan struct{}, 1)}, nil
}

// walMode switches the file to WAL mode, which lasts: connections opened
// later use it too.
func walMode(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("history/sqlite: WAL mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("history/sqlite: WAL mode: the file stays in %s mode", mode)
	}
	return nil
}

// retryBusy runs fn until it does not fail with SQLITE_BUSY, for up to
// BusyTimeout. SQLite answers some lock conflicts with SQLITE_BUSY at once,
// without waiting for the busy timeout: among them several connections
// switching a new file to WAL mode together.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(BusyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// dsn is the modernc.org/sqlite data source name of a file: a file: URI
// (so that any path works) with the settings every connection needs.
func dsn(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(path))
	return "file:" + esc + "?" + strings.Join([]string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()),
		"_pragma=synchronous(FULL)",
		"_txlock=immediate",
	}, "&")
}

// Close implements history.Store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("history/sqlite: close: %w", err)
	}
	return nil
}

// classify marks errors SQLite will repeat however often the batch is
// retried.
func classify(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", history.ErrInvalidEvent, err)
		}
	}
	return err
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
