package store_test

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// What is stored is store's own types, not the public blueprint API: a
// change to that API must not change the stored format, and the store
// contract does not link the blueprint package, its expression engine or
// any store's driver.
func TestStoreDepsStayOwn(t *testing.T) {
	t.Parallel()
	testenv.ForbidDeps(t, "store", testenv.Deps(t), []string{"github.com/avtomatika-ai/avtomatika-go/blueprint",
		"github.com/expr-lang/expr", "github.com/redis/go-redis", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/minio/minio-go"})
}
