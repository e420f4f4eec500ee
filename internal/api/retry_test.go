package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TestRetryOverHTTP: a quarantined job is retried by its owner only, runs
// its failed state again (a new task at attempt 1) and finishes; a job
// that has not failed is refused with 409 and the reason.
func TestRetryOverHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	if r := w.register("work"); r.status != http.StatusOK {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 1})
	first := w.take()
	r := ts.do("POST", protocol.PathResult, w.headers(), w.sign(protocol.TaskResult{JobID: id, TaskID: first.TaskID, WorkerID: w.id,
		Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "bad codec"}}, false))
	if r.status != http.StatusOK {
		t.Fatalf("result: %d %s", r.status, r.body)
	}
	ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusQuarantined })

	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"another client's job", client(otherToken), http.StatusNotFound},
	} {
		if r := ts.do("POST", "/api/v1/jobs/"+id+"/retry", tc.headers, nil); r.status != tc.status {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if j := ts.job(vipToken, id); j.Status != protocol.StatusQuarantined {
		t.Fatalf("a refused retry changed the job: %+v", j)
	}
	if r := ts.do("POST", "/api/v1/jobs/no-such-job/retry", client(vipToken), nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown job: %d %s", r.status, r.body)
	}

	r = ts.do("POST", "/api/v1/jobs/"+id+"/retry", client(vipToken), nil)
	var resp protocol.RetryResponse
	r.json(t, &resp)
	if r.status != http.StatusOK || resp != (protocol.RetryResponse{Status: "retry_accepted", JobID: id, State: "start"}) {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if j := ts.job(vipToken, id); j.Status.Terminal() || j.ErrorMessage != "" || j.FinishedAt != nil {
		t.Fatalf("after the retry: %+v", j)
	}
	second := w.take()
	if second.JobID != id || second.TaskID == first.TaskID || second.Attempt != 1 {
		t.Fatalf("the retried task: %+v (first %s)", second, first.TaskID)
	}
	if r := w.result(id, second.TaskID, protocol.TaskSuccess, map[string]any{"ok": true}); r.status != http.StatusOK {
		t.Fatalf("result: %d %s", r.status, r.body)
	}
	ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusFinished })

	r = ts.do("POST", "/api/v1/jobs/"+id+"/retry", client(vipToken), nil)
	if r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "is finished; only failed and quarantined jobs are retried") {
		t.Fatalf("retry of a finished job: %d %s", r.status, r.body)
	}
	var retried int
	ts.mu.Lock()
	for _, ev := range ts.events {
		if ev.Type == "job_retried" && ev.JobID == id && ev.Detail["by"] == "client client_vip" && ev.Detail["from_status"] == "quarantined" {
			retried++
		}
	}
	ts.mu.Unlock()
	if retried != 1 {
		t.Fatalf("%d job_retried events by client_vip", retried)
	}
}
