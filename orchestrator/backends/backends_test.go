package backends_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
)

// This test binary links package orchestrator and none of its backends.

const (
	importRedis    = `import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis")`
	importPostgres = `import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres")`
	importSQLite   = `import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite")`
	importS3       = `import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/s3")`
)

func TestConfigFromEnvNamesTheImportOfABackendNotLinked(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")
	t.Setenv("HISTORY_DATABASE_URI", "postgres://u@127.0.0.1:1/db")
	t.Setenv("S3_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("S3_ACCESS_KEY", "key")
	t.Setenv("S3_SECRET_KEY", "secret")
	_, err := orchestrator.ConfigFromEnv()
	if !errors.Is(err, backend.ErrNotLinked) {
		t.Fatalf("err = %v, want ErrNotLinked", err)
	}
	t.Log(err)
	for _, want := range []string{"REDIS_URL", importRedis, "HISTORY_DATABASE_URI", importPostgres, "S3_ENDPOINT_URL", importS3} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %s:\n%v", want, err)
		}
	}

	t.Setenv("HISTORY_DATABASE_URI", "sqlite:h.db")
	os.Unsetenv("REDIS_URL")
	os.Unsetenv("S3_ENDPOINT_URL")
	_, err = orchestrator.ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), importSQLite) || strings.Contains(err.Error(), importRedis) {
		t.Fatalf("sqlite: err = %v, want one naming %s", err, importSQLite)
	}
}

func TestConfigFromEnvWithoutSQLiteDefaultsToNoHistory(t *testing.T) {
	t.Setenv("HISTORY_DATABASE_URI", "")
	os.Unsetenv("HISTORY_DATABASE_URI")
	t.Setenv("REDIS_URL", "")
	t.Setenv("S3_ENDPOINT_URL", "")
	cfg, err := orchestrator.ConfigFromEnv()
	if err != nil || cfg.HistoryURI != "none" {
		t.Fatalf("HistoryURI = %q, err = %v; want none, nil", cfg.HistoryURI, err)
	}
}

func TestNewRefusesABackendNotLinkedAndOpensNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "history.db")
	for _, tc := range []struct {
		name string
		cfg  orchestrator.Config
		want string
	}{
		{"redis", orchestrator.Config{RedisURL: "redis://127.0.0.1:1/0"}, importRedis},
		{"sqlite", orchestrator.Config{HistoryURI: "sqlite:" + db}, importSQLite},
		{"postgres", orchestrator.Config{HistoryURI: "postgresql://u@127.0.0.1:1/db"}, importPostgres},
		{"s3", orchestrator.Config{S3: blob.S3Options{Endpoint: "http://127.0.0.1:1", AccessKey: "k", SecretKey: "s"}}, importS3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := orchestrator.New(tc.cfg)
			if o != nil || !errors.Is(err, backend.ErrNotLinked) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want an error naming %s", o, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused SQLite history was created: %v", err)
	}
}

// The embedded defaults need no backend: the in-memory store, no history,
// a local blob folder.
func TestEmbeddedDefaultsNeedNoBackend(t *testing.T) {
	o, err := orchestrator.New(orchestrator.Config{BlobDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
