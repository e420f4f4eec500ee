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
	"fmt"
	"net/url"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/postgres"
	"github.com/avtomatika-ai/avtomatika-go/history/sqlite"
)

// DefaultURI is the history database when none is configured.
const DefaultURI = "sqlite:avtomatika_history.db"

// Kind is a history backend.
type Kind string

// Backends.
const (
	None     Kind = "none"
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// Target is a parsed HISTORY_DATABASE_URI.
type Target struct {
	Kind Kind
	Path string // SQLite: the file
	URL  string // PostgreSQL: the connection URL, as given
}

// Parse reads a HISTORY_DATABASE_URI.
func Parse(uri string) (Target, error) {
	uri = strings.TrimSpace(uri)
	if uri == "" || strings.EqualFold(uri, "none") {
		return Target{Kind: None}, nil
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return Target{}, unsupported(uri)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return Target{}, fmt.Errorf("history: HISTORY_DATABASE_URI %s: want postgres://[user[:password]@]host[:port]/database", redact(uri))
		}
		return Target{Kind: Postgres, URL: uri}, nil
	case "sqlite", "sqlite3", "file":
		path, err := filePath(rest)
		if err != nil {
			return Target{}, fmt.Errorf("history: HISTORY_DATABASE_URI %q: %w", uri, err)
		}
		return Target{Kind: SQLite, Path: path}, nil
	}
	return Target{}, unsupported(uri)
}

// filePath reads the part of an SQLite URI after the scheme: an opaque
// (relative or absolute) path, or //[localhost]/absolute/path.
func filePath(rest string) (string, error) {
	if strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("query parameters are not supported; give a plain file path")
	}
	var path string
	if strings.HasPrefix(rest, "//") {
		u, err := url.Parse("sqlite:" + rest)
		if err != nil {
			return "", err
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%q is read as a host name: write sqlite:%s for a relative path or sqlite:///%s for an absolute one",
				u.Host, u.Host+u.Path, u.Host+u.Path)
		}
		path = u.Path
	} else {
		p, err := url.PathUnescape(rest)
		if err != nil {
			return "", err
		}
		path = p
	}
	if path == "" || path == ":memory:" {
		return "", fmt.Errorf("no file path")
	}
	return path, nil
}

func unsupported(uri string) error {
	return fmt.Errorf("history: unsupported HISTORY_DATABASE_URI %s: want sqlite:PATH, postgres://..., or none", redact(uri))
}

// redact hides a password in a URI for error messages.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable)"
	}
	return fmt.Sprintf("%q", u.Redacted())
}

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
