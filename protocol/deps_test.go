package protocol_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The wire types are shared by the orchestrator, the worker SDK and the
// client: they must stay a leaf of this module, with no heavy third-party
// dependency either.
func TestProtocolStaysLight(t *testing.T) {
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
	const module = "github.com/avtomatika-ai/avtomatika-go/"
	heavy := []string{"github.com/expr-lang/expr", "github.com/redis/go-redis", "github.com/jackc/pgx",
		"modernc.org/sqlite", "github.com/prometheus/", "go.opentelemetry.io/", "github.com/minio/minio-go"}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, module) && dep != module+"protocol" {
			t.Errorf("protocol depends on %s: it must import no other package of this module", dep)
		}
		for _, bad := range heavy {
			if dep == bad || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("protocol depends on %s (forbidden: %s)", dep, bad)
			}
		}
	}
}
