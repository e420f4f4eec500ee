package historydb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historydb"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		uri  string
		want historydb.Target
	}{
		{"", historydb.Target{Kind: historydb.None}},
		{"none", historydb.Target{Kind: historydb.None}},
		{" NONE ", historydb.Target{Kind: historydb.None}},
		{historydb.DefaultURI, historydb.Target{Kind: historydb.SQLite, Path: "avtomatika_history.db"}},
		{"sqlite:data/h.db", historydb.Target{Kind: historydb.SQLite, Path: "data/h.db"}},
		{"sqlite:/abs/h.db", historydb.Target{Kind: historydb.SQLite, Path: "/abs/h.db"}},
		{"sqlite:///abs/h.db", historydb.Target{Kind: historydb.SQLite, Path: "/abs/h.db"}},
		{"sqlite://localhost/abs/h.db", historydb.Target{Kind: historydb.SQLite, Path: "/abs/h.db"}},
		{"SQLite:my%20file.db", historydb.Target{Kind: historydb.SQLite, Path: "my file.db"}},
		{"sqlite3:h.db", historydb.Target{Kind: historydb.SQLite, Path: "h.db"}},
		{"file:h.db", historydb.Target{Kind: historydb.SQLite, Path: "h.db"}},
		{"file:///var/lib/h.db", historydb.Target{Kind: historydb.SQLite, Path: "/var/lib/h.db"}},
		{"postgres://u:p@db:5432/hist?sslmode=disable", historydb.Target{Kind: historydb.Postgres, URL: "postgres://u:p@db:5432/hist?sslmode=disable"}},
		{"postgresql://db/hist", historydb.Target{Kind: historydb.Postgres, URL: "postgresql://db/hist"}},
	} {
		got, err := historydb.Parse(tc.uri)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.uri, got, err, tc.want)
		}
	}
	for _, uri := range []string{
		"mysql://u:hunter2@db/x", "redis://db", "sqlite:", "sqlite://h.db", "sqlite:h.db?mode=ro",
		"sqlite::memory:", "postgres:db", "just-a-path.db", "off",
	} {
		_, err := historydb.Parse(uri)
		if err == nil {
			t.Errorf("Parse(%q) accepted it", uri)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error shows the password: %v", uri, err)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := historydb.Open(ctx, "none")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(history.Nop); !ok {
		t.Fatalf("none opened %T", s)
	}
	path := filepath.Join(t.TempDir(), "h.db")
	s, err = historydb.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := historydb.Open(ctx, "ftp://x"); err == nil {
		t.Fatal("ftp:// opened")
	}
}
