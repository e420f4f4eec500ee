// Package historydb opens the history.Store that HISTORY_DATABASE_URI
// names:
//
//	sqlite:PATH              an SQLite file, PATH relative to the working directory
//	sqlite:///abs/path.db    an SQLite file, absolute path (also sqlite:/abs/path.db)
//	file:PATH, file:///abs   the same
//	postgres://... or postgresql://...
//	                         PostgreSQL (any pgx parameter; search_path picks the schema)
//	"" or none               history disabled: history.Nop
//
// Anything else is an error (not a silent no-op).
package historydb

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/postgres"
	"github.com/avtomatika-ai/avtomatika-go/history/sqlite"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
)

// DefaultURI is the history database when none is configured.
const DefaultURI = backend.DefaultHistoryURI

// Kind is a history backend.
type Kind = backend.Kind

// Backends.
const (
	None     = backend.None
	SQLite   = backend.SQLite
	Postgres = backend.Postgres
)

// Target is a parsed HISTORY_DATABASE_URI.
type Target = backend.HistoryTarget

// Parse reads a HISTORY_DATABASE_URI (see the package comment).
func Parse(uri string) (Target, error) { return backend.ParseHistoryURI(uri) }

// Open opens and migrates the store uri names (see the package comment).
// The caller closes it.
func Open(ctx context.Context, uri string) (history.Store, error) {
	t, err := Parse(uri)
	if err != nil {
		return nil, err
	}
	switch t.Kind {
	case SQLite:
		return sqlite.Open(ctx, t.Path)
	case Postgres:
		return postgres.Open(ctx, t.URL, postgres.Options{})
	}
	return history.Nop{}, nil
}
