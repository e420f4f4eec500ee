package orchestrator_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitUntilT polls cond every 20 ms and fails the test if it is still false
// after timeout.
func waitUntilT(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logOnFailure returns a logger of warnings and errors that the test shows
// only if it fails: the orchestrator's own account of a failed request.
// The buffer outlives the test, so a goroutine that logs late writes
// nowhere harmful.
func logOnFailure(t *testing.T) *slog.Logger {
	buf := &testenv.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- orchestrator log (warnings and errors) ---\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
