package client_test

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// The API client is imported by users' programs and the CLI: it must not
// pull in the orchestrator (its engine, stores, blueprint DSL and
// expression language) nor the storage drivers.
var forbiddenClientDeps = []string{
	"github.com/avtomatika-ai/avtomatika-go/orchestrator",
	"github.com/avtomatika-ai/avtomatika-go/internal/engine",
	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch",
	"github.com/avtomatika-ai/avtomatika-go/internal/api",
	"github.com/avtomatika-ai/avtomatika-go/internal/scheduler",
	"github.com/avtomatika-ai/avtomatika-go/internal/telemetry",
	"github.com/avtomatika-ai/avtomatika-go/internal/webhook",
	"github.com/avtomatika-ai/avtomatika-go/store",
	"github.com/avtomatika-ai/avtomatika-go/history",
	"github.com/avtomatika-ai/avtomatika-go/blueprint",
	"github.com/avtomatika-ai/avtomatika-go/worker",
	"github.com/expr-lang/expr",
	"github.com/redis/go-redis",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
}

func TestClientDoesNotLinkTheOrchestrator(t *testing.T) {
	t.Parallel()
	testenv.ForbidDeps(t, "the client package", testenv.Deps(t), forbiddenClientDeps)
}
