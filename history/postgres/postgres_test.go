package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historytest"
	"github.com/avtomatika-ai/avtomatika-go/history/postgres"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// schema returns a new schema name for this test run and drops the schema
// when the test ends, so that parallel runs never meet.
func schema(t *testing.T, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := fmt.Sprintf("avto_history_test_%d_%s", os.Getpid(), hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func open(t *testing.T, url, schema string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.PostgresVar)
	historytest.Run(t, func(t *testing.T) history.Store {
		return open(t, url, schema(t, url))
	})
}

func TestMigrationsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.PostgresVar)
	ctx := context.Background()
	name := schema(t, url)
	// Several orchestrators start together on a new schema, each with its
	// own pool.
	var g errgroup.Group
	for range 8 {
		g.Go(func() error {
			s, err := postgres.Open(ctx, url, postgres.Options{Schema: name})
			if err != nil {
				return err
			}
			return s.Close()
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	a, b := open(t, url, name), open(t, url, name)
	for _, s := range []*postgres.Store{a, b} {
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != postgres.LatestVersion() {
			t.Fatalf("schema version %d (%v), want %d", v, err, postgres.LatestVersion())
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{name, "history_schema_migrations"}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != postgres.LatestVersion() {
		t.Fatalf("%d migration rows, want %d (each applied once)", n, postgres.LatestVersion())
	}
}

// The schema can come from the URL's search_path instead of Options; a
// search_path naming no schema is a clear error.
func TestSearchPathFromURL(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.PostgresVar)
	ctx := context.Background()
	name := schema(t, url)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	_, err := postgres.Open(ctx, url+sep+"search_path="+name, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "no existing schema") {
		t.Fatalf("Open with a missing search_path schema = %v", err)
	}
	open(t, url, name) // creates it
	s, err := postgres.Open(ctx, url+sep+"search_path="+name, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := history.Event{ID: uuid.NewString(), Time: time.Now(), Type: history.JobCreated, JobID: "j"}
	if err := s.Append(ctx, []history.Event{e}); err != nil {
		t.Fatal(err)
	}
	if got, err := open(t, url, name).JobEvents(ctx, "j"); err != nil || len(got) != 1 {
		t.Fatalf("event not in schema %s: %v %v", name, got, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := postgres.Open(ctx, "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1",
		postgres.Options{StartupRetry: 600 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Open kept retrying for %v with StartupRetry 600ms", d)
	}
}

func BenchmarkAppend500(b *testing.B) {
	url := testenv.URL(b, testenv.PostgresVar)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Options{Schema: fmt.Sprintf("avto_history_bench_%d", os.Getpid())})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			conn.Exec(ctx, fmt.Sprintf("DROP SCHEMA avto_history_bench_%d CASCADE", os.Getpid()))
			conn.Close(ctx)
		}
		s.Close()
	}()
	historytest.BenchmarkAppend(b, s, 500)
}
