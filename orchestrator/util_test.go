package orchestrator_test

import (
	"log/slog"
	"net/http"
	"testing"

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
