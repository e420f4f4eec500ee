package testenv

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Deps returns the packages the package in the current directory links
// (go list -deps), for tests that keep a package's dependencies lean. It
// skips when the go tool is not on PATH.
func Deps(t testing.TB) []string {
	t.Helper()
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
	return strings.Fields(string(out))
}

// ForbidDeps fails the test for every package of deps that is one of
// forbidden or below it; what names the package under test.
func ForbidDeps(t testing.TB, what string, deps, forbidden []string) {
	t.Helper()
	for _, dep := range deps {
		for _, bad := range forbidden {
			if bad = strings.TrimSuffix(bad, "/"); dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("%s depends on %s (forbidden: %s)", what, dep, bad)
			}
		}
	}
}
