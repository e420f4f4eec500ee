// Package testenv tells tests which real services they may use. A suite that
// needs a service whose URL is not set skips, loudly; with
// AVTO_REQUIRE_SERVICES=1 (as in CI) it fails instead.
package testenv

import (
	"os"
	"testing"
)

// Service URL variables.
const (
	RedisVar    = "AVTO_TEST_REDIS_URL"
	PostgresVar = "AVTO_TEST_POSTGRES_URL"
	S3Var       = "AVTO_TEST_S3_ENDPOINT"
	ChromiumVar = "AVTO_TEST_CHROMIUM"
	PromVar     = "AVTO_TEST_PROMETHEUS"
)

// Required reports whether missing services are failures.
func Required() bool { return os.Getenv("AVTO_REQUIRE_SERVICES") == "1" }

// URL returns the value of the service variable, or skips (fails when
// services are required).
func URL(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if Required() {
		t.Fatalf("%s is not set but AVTO_REQUIRE_SERVICES=1: this suite must run", name)
	}
	t.Skipf("SKIPPED: %s is not set, so this suite does not run (set it, or run .ci/run)", name)
	return ""
}
