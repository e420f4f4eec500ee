package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// quarantine creates a job of token's client and has a worker quarantine it
// with a security error.
func (ts *testServer) quarantine(token string, w *signedWorker) string {
	ts.t.Helper()
	id := ts.createJob(token, nil)
	task := w.take()
	r := w.ts.do("POST", protocol.PathResult, w.headers(), w.sign(protocol.TaskResult{
		JobID: task.JobID, TaskID: task.TaskID, WorkerID: w.id, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrSecurity, Message: "tampered"},
	}, false))
	if r.status != http.StatusOK {
		ts.t.Fatalf("result: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j := ts.job(token, id)
		if j.Status == protocol.StatusQuarantined {
			return id
		}
		if j.Status.Terminal() {
			ts.t.Fatalf("job ended %s, not quarantined", j.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.t.Fatalf("job %s was not quarantined", id)
	return ""
}

// registered is a worker with the global token, registered with skills.
func (ts *testServer) registered(id string, skills ...string) *signedWorker {
	ts.t.Helper()
	w := ts.worker(id, globalToken)
	if r := w.register(skills...); r.status != http.StatusOK {
		ts.t.Fatalf("register %s: %d %s", id, r.status, r.body)
	}
	return w
}

func TestQuarantinedJobsAreTheCallersOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.registered("w1", "work")
	mine := ts.quarantine(vipToken, w)
	theirs := ts.quarantine(otherToken, w)
	running := ts.createJob(vipToken, nil) // not quarantined: not listed
	_ = running

	for _, path := range []string{protocol.PublicQuarantined, "/api/v1/jobs/quarantined"} {
		var jobs []protocol.Job
		r := ts.do("GET", path, client(vipToken), nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		r.json(t, &jobs)
		if len(jobs) != 1 || jobs[0].ID != mine || jobs[0].Status != protocol.StatusQuarantined || !strings.Contains(jobs[0].ErrorMessage, "tampered") {
			t.Fatalf("%s for the owner: %s", path, r.body)
		}
		r = ts.do("GET", path, client(otherToken), nil)
		r.json(t, &jobs)
		if len(jobs) != 1 || jobs[0].ID != theirs {
			t.Fatalf("%s for the other client: %s", path, r.body)
		}
		r = ts.do("GET", path, client(limitedToken), nil)
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("%s for a client without any: %d %s", path, r.status, r.body)
		}
		if r := ts.do("GET", path, nil, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("%s without a token: %d %s", path, r.status, r.body)
		}
		if r := ts.do("GET", path+"?limit=0", client(vipToken), nil); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "limit") {
			t.Fatalf("%s with limit 0: %d %s", path, r.status, r.body)
		}
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.registered("w1", "work")
	ts.quarantine(vipToken, w)
	ts.createJob(vipToken, nil) // its task waits in the queue
	ts.createJob(vipToken, map[string]any{"mode": "approval"})
	ts.createJob(otherToken, nil) // another client's job: not counted, its task is queued
	want := map[string]int{"quarantined": 1, "waiting_for_worker": 1, "waiting_for_human": 1, "queued": 2}
	var d protocol.Dashboard
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := ts.do("GET", "/api/v1/dashboard", client(vipToken), nil)
		if r.status != http.StatusOK {
			t.Fatalf("dashboard: %d %s", r.status, r.body)
		}
		d = protocol.Dashboard{}
		r.json(t, &d)
		if equalCounts(d.Jobs, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard jobs %v, want %v: %s", d.Jobs, want, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d.Workers.Total != 1 || d.Workers.ByStatus["idle"] != 1 || d.Queues.Pending["work"]+d.Queues.Assigned != 2 || d.JobsTruncated {
		t.Fatalf("dashboard %+v", d)
	}
	if r := ts.do("GET", "/api/v1/dashboard", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("dashboard without a token: %d", r.status)
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestWorkerCatalog(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	for _, id := range []string{"w1", "w2"} {
		if r := ts.worker(id, globalToken).register("work", "resize"); r.status != http.StatusOK {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
	}
	gpu := ts.worker("gpu-worker-01", gpuToken)
	reg := protocol.Registration{WorkerID: gpu.id, WorkerType: "gpu",
		SupportedSkills: []protocol.SkillInfo{{Name: "transcode", Description: "video", InputSchema: map[string]any{"type": "object"}}},
		Capabilities:    &protocol.Capabilities{CostPerSkill: map[string]float64{"transcode": 0.5}}}
	if r := ts.do("POST", protocol.PathRegister, gpu.headers(), gpu.sign(reg, false)); r.status != http.StatusOK {
		t.Fatalf("register gpu: %d %s", r.status, r.body)
	}
	var cat protocol.WorkerCatalog
	r := ts.do("GET", "/api/v1/workers/catalog", client(vipToken), nil)
	if r.status != http.StatusOK {
		t.Fatalf("catalog: %d %s", r.status, r.body)
	}
	r.json(t, &cat)
	if len(cat) != 3 {
		t.Fatalf("catalog %s", r.body)
	}
	work := cat["work"]
	if work.ProvidersCount != 2 || len(work.WorkerTypes) != 1 || work.WorkerTypes[0] != "test" || work.AverageReputation != 1 ||
		work.Contract.Name != "work" || work.Contract.BasePrice == nil || *work.Contract.BasePrice != 0.001 {
		t.Fatalf("work: %+v", work)
	}
	tc := cat["transcode"]
	if tc.ProvidersCount != 1 || tc.WorkerTypes[0] != "gpu" || tc.Contract.Description != "video" || tc.Contract.InputSchema["type"] != "object" ||
		*tc.Contract.BasePrice != 0.5 {
		t.Fatalf("transcode: %+v", tc)
	}
	if !strings.Contains(string(r.body), `"base_price":0.5`) || !strings.Contains(string(r.body), `"providers_count":2`) {
		t.Fatalf("wire shape: %s", r.body)
	}
}

func TestReloadWorkers(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "workers.toml")
	writeFile(t, path, "[gpu-worker-01]\ntoken = \"first\"\n")
	ts := newTestServer(t, func(o *Options) {
		o.ReloadWorkers = func() (int, error) {
			tokens, err := auth.LoadWorkers(path)
			if err != nil {
				return 0, err
			}
			o.Workers.Replace(tokens, globalToken)
			return o.Workers.Len(), nil
		}
	})
	admin := map[string]string{protocol.HeaderAdminToken: adminToken}
	if r := ts.do("POST", "/api/v1/admin/reload-workers", client(vipToken), nil); r.status != http.StatusForbidden {
		t.Fatalf("a client without the admin token: %d %s", r.status, r.body)
	}
	r := ts.do("POST", "/api/v1/admin/reload-workers", admin, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"worker_configs_reloaded"`) {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	// The new token works, the old one no longer does.
	if r := ts.worker("gpu-worker-01", "first").register("work"); r.status != http.StatusOK {
		t.Fatalf("register with the reloaded token: %d %s", r.status, r.body)
	}
	if r := ts.worker("gpu-worker-01", gpuToken).register("work"); r.status != http.StatusForbidden {
		t.Fatalf("register with the old token: %d %s", r.status, r.body)
	}
	// An invalid file is refused and changes nothing.
	if err := os.WriteFile(path, []byte("[gpu-worker-01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ts.do("POST", "/api/v1/admin/reload-workers", admin, nil); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "previous configuration stays") {
		t.Fatalf("invalid file: %d %s", r.status, r.body)
	}
	if r := ts.worker("gpu-worker-01", "first").register("work", "resize"); r.status != http.StatusOK {
		t.Fatalf("after a failed reload: %d %s", r.status, r.body)
	}
}
