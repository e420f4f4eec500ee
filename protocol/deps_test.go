package protocol_test

import (
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// The wire types are shared by the orchestrator, the worker SDK and the
// client: they must stay a leaf of this module, with no heavy third-party
// dependency either.
func TestProtocolStaysLight(t *testing.T) {
	t.Parallel()
	deps := testenv.Deps(t)
	const module = "github.com/avtomatika-ai/avtomatika-go/"
	for _, dep := range deps {
		if strings.HasPrefix(dep, module) && dep != module+"protocol" {
			t.Errorf("protocol depends on %s: it must import no other package of this module", dep)
		}
	}
	testenv.ForbidDeps(t, "protocol", deps, []string{"github.com/expr-lang/expr", "github.com/redis/go-redis", "github.com/jackc/pgx",
		"modernc.org/sqlite", "github.com/prometheus/", "go.opentelemetry.io/", "github.com/minio/minio-go"})
}
