package client_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "list", "-deps", ".").Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range forbiddenClientDeps {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("the client package depends on %s (forbidden: %s)", dep, bad)
			}
		}
	}
}
