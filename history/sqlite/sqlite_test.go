package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historytest"
	"github.com/avtomatika-ai/avtomatika-go/history/sqlite"
	"github.com/google/uuid"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	historytest.Run(t, func(t *testing.T) history.Store {
		return open(t, filepath.Join(t.TempDir(), "history.db"))
	})
}

func TestMigrationsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	// Several orchestrators start together on a new file.
	var g errgroup.Group
	for range 8 {
		g.Go(func() error {
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				return err
			}
			return s.Close()
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// And again, twice, on the migrated file.
	a := open(t, path)
	b := open(t, path)
	for _, s := range []*sqlite.Store{a, b} {
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != sqlite.LatestVersion() {
			t.Fatalf("schema version %d (%v), want %d", v, err, sqlite.LatestVersion())
		}
	}
}

// Two handles on one file (as two processes would have) write at once
// without busy errors, and a reopened file has everything.
func TestSharedFileAndReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space", "h?#%.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	stores := []*sqlite.Store{open(t, path), open(t, path)}
	var g errgroup.Group
	for i, s := range stores {
		g.Go(func() error {
			for b := range 50 {
				var batch []history.Event
				for k := range 10 {
					batch = append(batch, history.Event{ID: uuid.NewString(), Time: time.Now(), Type: history.Progress,
						JobID: "job-shared", Detail: map[string]any{"writer": i, "n": b*10 + k}})
				}
				if err := s.Append(ctx, batch); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	got, err := open(t, path).JobEvents(ctx, "job-shared")
	if err != nil || len(got) != 1000 {
		t.Fatalf("reopened file has %d events (%v), want 1000", len(got), err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "missing-dir", "h.db")} {
		if s, err := sqlite.Open(ctx, p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		} else if p != "" && !strings.Contains(err.Error(), p) {
			t.Errorf("Open(%q) error does not name the path: %v", p, err)
		}
	}
}

func BenchmarkAppend500(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	historytest.BenchmarkAppend(b, s, 500)
}

// TestListByStatusUsesAnIndex: listing by status (the console's counts)
// reads an index on status instead of scanning every job.
func TestListByStatusUsesAnIndex(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "h.db")
	open(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for q, want := range map[string]string{
		`SELECT id FROM history_jobs WHERE status = 'error' ORDER BY created_at DESC, id DESC LIMIT 501`:                  "history_jobs_status",
		`SELECT id FROM history_jobs WHERE client = 'a' AND status = 'error' ORDER BY created_at DESC, id DESC LIMIT 501`: "history_jobs_client_status",
	} {
		var plan strings.Builder
		rows, err := db.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), want) || strings.Contains(plan.String(), "TEMP B-TREE") {
			t.Errorf("%s\nplan:\n%s\nwant a walk of %s", q, plan.String(), want)
		}
	}
}
