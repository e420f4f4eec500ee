package main

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// hello runs on the embedded defaults: it must not link the clients of the
// backends it does not use (they are opt-in, see orchestrator/backends).
func TestHelloLinksNoBackend(t *testing.T) {
	t.Parallel()
	testenv.ForbidDeps(t, "examples/hello", testenv.Deps(t), []string{
		"github.com/redis/go-redis",
		"github.com/jackc/pgx",
		"modernc.org/sqlite",
		"github.com/avtomatika-ai/avtomatika-go/store/redis",
		"github.com/avtomatika-ai/avtomatika-go/history/sqlite",
		"github.com/avtomatika-ai/avtomatika-go/history/postgres",
		"github.com/avtomatika-ai/avtomatika-go/orchestrator/backends",
	})
}
