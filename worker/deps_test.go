package worker_test

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// The worker SDK is linked into users' programs: it must not pull in the
// orchestrator (its engine, stores, blueprint DSL and expression language)
// nor the storage drivers, which would bloat every worker binary and tie it
// to the server's dependencies.
var forbiddenWorkerDeps = []string{
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
	"github.com/expr-lang/expr",
	"github.com/redis/go-redis",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
}

func TestWorkerDoesNotLinkTheOrchestrator(t *testing.T) {
	t.Parallel()
	testenv.ForbidDeps(t, "the worker SDK", testenv.Deps(t), forbiddenWorkerDeps)
}
