package api

import (
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Worker routes check the credentials in the headers before they read a
// byte of the body: a stranger announcing a big body is answered at once.
func TestWorkerRoutesAuthenticateBeforeTheBody(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *Options) { o.BodyTimeout = -1 }) // only the early answer can end these requests
	addr := strings.TrimPrefix(ts.http.URL, "http://")
	gpu := ts.worker("gpu-worker-01", gpuToken).headers()
	noID := map[string]string{protocol.HeaderWorkerToken: gpuToken}
	for name, tc := range map[string]struct {
		method, path string
		headers      map[string]string
		status       int
		msg          string
	}{
		"result without a token":          {"POST", protocol.PathResult, nil, 403, "Missing X-Worker-Token"},
		"result with an unknown token":    {"POST", protocol.PathResult, map[string]string{protocol.HeaderWorkerToken: "made-up", protocol.HeaderWorkerID: "w9"}, 403, "Unauthorized"},
		"result, unknown token, no id":    {"POST", protocol.PathResult, map[string]string{protocol.HeaderWorkerToken: "made-up"}, 403, "Unauthorized"},
		"result, individual token, no id": {"POST", protocol.PathResult, noID, 403, "X-Worker-ID"},
		"result, another worker's token":  {"POST", protocol.PathResult, map[string]string{protocol.HeaderWorkerToken: gpuToken, protocol.HeaderWorkerID: "w9"}, 403, "Unauthorized"},
		"events without a token":          {"POST", protocol.PathEvents, nil, 403, "Missing X-Worker-Token"},
		"register with a wrong token":     {"POST", protocol.PathRegister, map[string]string{protocol.HeaderWorkerToken: "made-up", protocol.HeaderWorkerID: "gpu-worker-01"}, 403, "Invalid individual worker token"},
		"heartbeat of another worker":     {"PATCH", "/_worker/workers/w9", gpu, 403, "mismatch"},
		"refresh without a worker id":     {"POST", protocol.PathTokenRefresh, nil, 400, "Missing worker_id"},
		"create job without a token":      {"POST", "/api/v1/jobs/demo", nil, 401, "X-Client-Token"},
		"create job with a wrong token":   {"POST", "/api/v1/jobs/demo", client("made-up"), 401, "Invalid token"},
	} {
		t.Run(name, func(t *testing.T) {
			c, rd := stalledRequest(t, addr, tc.method, tc.path, tc.headers, 10_000_000, `{"job_id":`)
			resp, e := answer(t, c, rd, 5*time.Second)
			if resp.StatusCode != tc.status || !strings.Contains(e.Error, tc.msg) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, e.Error, tc.status, tc.msg)
			}
		})
	}
}
