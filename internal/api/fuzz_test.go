package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// FuzzRequestDecoders throws arbitrary bodies at every JSON route: each must
// answer 2xx or a 4xx with a JSON error, never a 5xx or a panic.
func FuzzRequestDecoders(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"initial_data":{"a":1}}`, `{"initial_data":"x"}`, `[]`, `null`, `{"decision":"approved"}`,
		`{"job_id":"j","task_id":"t","status":"success","data":{"x":[1,2]}}`, `{"worker_id":"w1","timestamp":1,"security":{"signature":"ab"}}`,
		`{"event_type":"progress","payload":{"progress":"x"}}`, "\x00\xff", `{"a":` + strings.Repeat("[", 100), `{"refresh_token":5}`,
	} {
		f.Add(seed)
	}
	ts := newTestServer(f, nil)
	ts.worker("w1", globalToken).register("work")
	id := ts.createJob(vipToken, nil)
	h := ts.srv.Handler()
	workerHdr := ts.worker("w1", globalToken).headers()
	routes := []struct {
		method, path string
		headers      map[string]string
	}{
		{"POST", "/api/v1/jobs/demo", client(vipToken)},
		{"POST", "/api/v1/jobs/" + id + "/approve", client(vipToken)},
		{"POST", "/_public/webhooks/approval/" + id, client(vipToken)},
		{"POST", protocol.PathRegister, workerHdr},
		{"PATCH", "/_worker/workers/w1", workerHdr},
		{"POST", protocol.PathResult, workerHdr},
		{"POST", protocol.PathEvents, workerHdr},
		{"POST", protocol.PathTokenRefresh, workerHdr},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, rt := range routes {
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
			for k, v := range rt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s answered %d to %q: %s", rt.method, rt.path, rec.Code, body, rec.Body)
			}
			if rec.Code >= 400 {
				var e protocol.ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("%s %s: %d without a JSON error: %q", rt.method, rt.path, rec.Code, rec.Body)
				}
			}
		}
	})
}
