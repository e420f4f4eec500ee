// Package backend is the registry of the orchestrator's optional backends:
// the Redis live store, the SQLite and PostgreSQL history databases and S3
// blob storage. A program links one by importing its package under
// orchestrator/backends, which registers it at init, as database/sql
// drivers do; package orchestrator itself links none of them, so a program
// on the embedded defaults carries none of their clients.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Kind names a backend (and, for history, the kind of HISTORY_DATABASE_URI).
type Kind string

// Backends.
const (
	None     Kind = "none" // no history database
	Redis    Kind = "redis"
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
	S3       Kind = "s3"
	Graphviz Kind = "graphviz" // blueprint graphs as SVG (the console)
)

// DefaultHistoryURI is the history database when none is configured.
const DefaultHistoryURI = "sqlite:avtomatika_history.db"

// Import is the package a program imports to link the backend.
func Import(k Kind) string {
	return "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/" + string(k)
}

// what describes a backend and the setting that asks for it, for errors.
var what = map[Kind]string{
	Redis:    "the Redis live store (REDIS_URL)",
	SQLite:   "the SQLite history database (HISTORY_DATABASE_URI=sqlite:...)",
	Postgres: "the PostgreSQL history database (HISTORY_DATABASE_URI=postgres://...)",
	S3:       "S3 blob storage (S3_ENDPOINT_URL)",
	Graphviz: "blueprint graphs rendered as SVG (the console's job page)",
}

// ErrNotLinked is returned by Lookup for a backend the program does not
// link.
var ErrNotLinked = errors.New("backend not linked into this program")

// StoreOptions configure a live store.
type StoreOptions struct {
	URL       string
	Cluster   bool // URL names a Redis Cluster's seed nodes
	Shards    int  // shards of the live state (store/redis Options.Shards)
	Prefix    string
	PoolSize  int
	Retention time.Duration
	Logger    *slog.Logger
}

// Backend opens what one backend provides; the fields it does not provide
// are nil.
type Backend struct {
	OpenStore   func(context.Context, StoreOptions) (store.Store, error)
	OpenHistory func(context.Context, HistoryTarget) (history.Store, error)
	OpenBlobs   func(context.Context, blob.S3Options) (blob.Store, error)
	// RenderSVG lays out Graphviz DOT source as an SVG document.
	RenderSVG func(ctx context.Context, dot string) ([]byte, error)
}

// The registry is written only by Register, from init functions.
var (
	mu       sync.RWMutex
	backends = map[Kind]Backend{}
)

// Register makes a backend available. It panics when the kind is
// registered twice or unknown, like database/sql.Register.
func Register(k Kind, b Backend) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := what[k]; !ok {
		panic(fmt.Sprintf("backend: Register of unknown kind %q", k))
	}
	if _, dup := backends[k]; dup {
		panic(fmt.Sprintf("backend: Register called twice for %s", k))
	}
	backends[k] = b
}

// Lookup returns a registered backend, or an error that wraps ErrNotLinked
// and names the import that links it.
func Lookup(k Kind) (Backend, error) {
	mu.RLock()
	b, ok := backends[k]
	mu.RUnlock()
	if !ok {
		return Backend{}, fmt.Errorf("%s: %w (add: import _ %q)", what[k], ErrNotLinked, Import(k))
	}
	return b, nil
}

// Linked reports whether a backend is registered.
func Linked(k Kind) bool {
	_, err := Lookup(k)
	return err == nil
}

// HistoryTarget is a parsed HISTORY_DATABASE_URI.
type HistoryTarget struct {
	Kind Kind
	Path string // SQLite: the file
	URL  string // PostgreSQL: the connection URL, as given
}

// ParseHistoryURI reads a HISTORY_DATABASE_URI:
//
//	sqlite:PATH              an SQLite file, PATH relative to the working directory
//	sqlite:///abs/path.db    an SQLite file, absolute path (also sqlite:/abs/path.db)
//	file:PATH, file:///abs   the same
//	postgres://... or postgresql://...
//	                         PostgreSQL (any pgx parameter; search_path picks the schema)
//	"" or none               history disabled
//
// Anything else is an error (not a silent no-op).
func ParseHistoryURI(uri string) (HistoryTarget, error) {
	uri = strings.TrimSpace(uri)
	if uri == "" || strings.EqualFold(uri, "none") {
		return HistoryTarget{Kind: None}, nil
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return HistoryTarget{}, unsupported(uri)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return HistoryTarget{}, fmt.Errorf("history: HISTORY_DATABASE_URI %s: want postgres://[user[:password]@]host[:port]/database", redact(uri))
		}
		return HistoryTarget{Kind: Postgres, URL: uri}, nil
	case "sqlite", "sqlite3", "file":
		path, err := filePath(rest)
		if err != nil {
			return HistoryTarget{}, fmt.Errorf("history: HISTORY_DATABASE_URI %q: %w", uri, err)
		}
		return HistoryTarget{Kind: SQLite, Path: path}, nil
	}
	return HistoryTarget{}, unsupported(uri)
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
