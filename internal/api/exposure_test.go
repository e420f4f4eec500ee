package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TestWorkerDetailsNeedTheAdminToken: every client, the limited one too,
// used to see each worker's hostname, installed software and versions,
// device UUIDs, usage and the ids of the tasks it ran. A client sees what
// dispatch decides on; the admin token shows the rest.
func TestWorkerDetailsNeedTheAdminToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("gpu-worker-01", gpuToken)
	reg := protocol.Registration{WorkerID: w.id, WorkerType: "gpu",
		SupportedSkills:   []protocol.SkillInfo{{Name: "work"}},
		Capabilities:      &protocol.Capabilities{Hostname: "render-07.corp.internal", IPAddress: "10.1.2.3", CostPerSkill: map[string]float64{"work": 0.5}},
		InstalledSoftware: map[string]string{"ffmpeg": "5.1.2"},
		InstalledArtifacts: []protocol.InstalledArtifact{{Name: "sd-1.5", Version: "1.5", Type: "model",
			Properties: map[string]any{"path": "/srv/models/sd"}}},
		Resources: &protocol.Resources{
			Devices: []protocol.HardwareDevice{{Type: "gpu", Model: "NVIDIA H200", ID: "0",
				Properties: map[string]any{"memory_gb": 141, "uuid": "GPU-5e1f0c1a-aaaa-bbbb-cccc-0123456789ab", "driver": "550.54"},
				Metrics:    map[string]any{"temperature_c": 51}}},
			Properties: map[string]any{"cpu_cores": 16, "ram_gb": 128, "gpu_count": 1, "gpu_info": map[string]any{"model": "NVIDIA H200", "vram_gb": 141},
				"rack": "b7-row3"},
		},
		Metadata: map[string]any{"owner": "ops@corp"},
	}
	if r := ts.do("POST", protocol.PathRegister, w.headers(), w.sign(reg, false)); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	hb := w.sign(protocol.Heartbeat{WorkerID: w.id, Status: "busy", CurrentTasks: []string{"task-of-another-client"},
		Usage: &protocol.Usage{CPULoadPercent: 12, RAMUsedGB: 40}}, false)
	if r := ts.do("PATCH", "/_worker/workers/"+w.id, w.headers(), hb); r.status != 200 {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	secrets := []string{"render-07", "10.1.2.3", "ffmpeg", "5.1.2", "GPU-5e1f", "550.54", "temperature", "task-of-another-client",
		"cpu_load_percent", "/srv/models", "b7-row3", "ops@corp"}

	for _, token := range []string{limitedToken, vipToken} {
		r := ts.do("GET", "/api/v1/workers", client(token), nil)
		if r.status != 200 {
			t.Fatalf("workers: %d %s", r.status, r.body)
		}
		for _, s := range secrets {
			if strings.Contains(string(r.body), s) {
				t.Errorf("a client sees %q: %s", s, r.body)
			}
		}
		var ws []protocol.WorkerInfo
		r.json(t, &ws)
		if len(ws) != 1 {
			t.Fatalf("workers: %s", r.body)
		}
		v := ws[0]
		// What dispatch decides on stays.
		if v.WorkerID != w.id || v.WorkerType != "gpu" || v.Status != "busy" || len(v.Skills) != 1 || v.CostPerSkill["work"] != 0.5 || v.Reputation != 1 {
			t.Errorf("dispatch facts: %s", r.body)
		}
		if v.Resources == nil || len(v.Resources.Devices) != 1 || v.Resources.Devices[0].Model != "NVIDIA H200" ||
			v.Resources.Devices[0].Properties["memory_gb"] != 141.0 || v.Resources.Properties["cpu_cores"] != 16.0 ||
			v.Resources.Properties["gpu_info"].(map[string]any)["vram_gb"] != 141.0 || v.Resources.Properties["gpu_info"].(map[string]any)["model"] != "NVIDIA H200" {
			t.Errorf("hardware summary: %s", r.body)
		}
		if len(v.InstalledArtifacts) != 1 || v.InstalledArtifacts[0].Name != "sd-1.5" || v.InstalledArtifacts[0].Version != "1.5" {
			t.Errorf("artifacts: %s", r.body)
		}
	}

	// The admin token shows everything the worker registered and reports.
	admin := client(limitedToken)
	admin[protocol.HeaderAdminToken] = adminToken
	r := ts.do("GET", "/api/v1/workers", admin, nil)
	var ws []protocol.WorkerInfo
	r.json(t, &ws)
	if r.status != 200 || len(ws) != 1 || ws[0].Hostname != "render-07.corp.internal" || ws[0].InstalledSoftware["ffmpeg"] != "5.1.2" ||
		ws[0].Usage == nil || len(ws[0].CurrentTasks) != 1 {
		t.Fatalf("admin view: %d %s", r.status, r.body)
	}
	// A wrong admin token is refused, not quietly downgraded.
	admin[protocol.HeaderAdminToken] = "guess"
	if r := ts.do("GET", "/api/v1/workers", admin, nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), "render-07") {
		t.Fatalf("wrong admin token: %d %s", r.status, r.body)
	}
	// The admin token alone is no client token.
	if r := ts.do("GET", "/api/v1/workers", map[string]string{protocol.HeaderAdminToken: adminToken}, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("admin token without a client token: %d %s", r.status, r.body)
	}
}

// TestWebhookURLSecrets: a webhook_url with user:password used to be
// stored and shown as given. User info is refused at creation; secrets in
// the query are delivered but redacted in what the API shows and history
// stores.
func TestWebhookURLSecrets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	for _, u := range []string{"https://user:hunter2@hooks.example/cb", "https://tok3n@hooks.example/cb"} {
		r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), protocol.CreateJobRequest{WebhookURL: u})
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "WEBHOOK_SECRET") || strings.Contains(string(r.body), "hunter2") {
			t.Fatalf("webhook with user info %q: %d %s", u, r.status, r.body)
		}
	}
	raw := "https://hooks.example/cb?job=7&access_token=s3cr3t&X-Amz-Signature=abcdef&sig=123"
	r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), protocol.CreateJobRequest{WebhookURL: raw})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created protocol.CreateJobResponse
	r.json(t, &created)
	want := "https://hooks.example/cb?job=7&access_token=redacted&X-Amz-Signature=redacted&sig=redacted"
	if j := ts.job(vipToken, created.JobID); j.WebhookURL != want {
		t.Errorf("job view webhook_url %q, want %q", j.WebhookURL, want)
	}
	list := ts.do("GET", "/api/v1/jobs", client(vipToken), nil)
	if strings.Contains(string(list.body), "s3cr3t") || strings.Contains(string(list.body), "abcdef") {
		t.Errorf("list shows the secret: %s", list.body)
	}
	// The live job keeps what delivery needs.
	if j, err := ts.eng.GetJob(context.Background(), created.JobID); err != nil || j.WebhookURL != raw {
		t.Fatalf("live job: %v %v", j, err)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                   "",
		"https://h.example/x":                "https://h.example/x",
		"https://h.example/x?a=1&b=two%20":   "https://h.example/x?a=1&b=two%20",
		"https://u:p@h.example/x":            "https://redacted@h.example/x",
		"https://h.example/x?token=t&page=2": "https://h.example/x?token=redacted&page=2",
		"https://h.example/x?Client_Secret=s&PASSWORD=p&api-key=k&apiKey=k2&signature=s&auth=a&code=c&session_id=i&pwd=x&id=9": "https://h.example/x?Client_Secret=redacted&PASSWORD=redacted&api-key=redacted&apiKey=redacted&signature=redacted&auth=redacted&code=redacted&session_id=redacted&pwd=redacted&id=9",
		"https://h.example/x?acc%65ss_token=t": "https://h.example/x?acc%65ss_token=redacted",
		"https://h.example/x?token":            "https://h.example/x?token=redacted",
		"https://h.example/x#access_token=t":   "https://h.example/x#redacted",
		"http://[::1:bad":                      "(unparsable URL, redacted)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWebhookAttemptRedactedForHistory: the webhook attempt's detail keeps
// the URL for the process's observers, and the audit trail gets it
// redacted.
func TestWebhookAttemptRedactedForHistory(t *testing.T) {
	t.Parallel()
	detail := map[string]any{"url": "https://u:p@h.example/cb?token=t", "attempt": 1}
	ev := RedactEvent(engine.Event{Type: engine.EventWebhookAttempt, Detail: detail})
	if ev.Detail["url"] != "https://redacted@h.example/cb?token=redacted" || ev.Detail["attempt"] != 1 {
		t.Fatalf("redacted detail %v", ev.Detail)
	}
	if detail["url"] != "https://u:p@h.example/cb?token=t" {
		t.Fatal("RedactEvent changed the event it was given")
	}
}

// fixedHistory is a history store with one job (not in the live store)
// written before views were redacted.
type fixedHistory struct {
	job    protocol.Job
	events []history.Event
}

func (h *fixedHistory) Append(context.Context, []history.Event) error { return nil }
func (h *fixedHistory) JobEvents(_ context.Context, id string) ([]history.Event, error) {
	if id != h.job.ID {
		return nil, history.ErrNotFound
	}
	out := make([]history.Event, len(h.events))
	copy(out, h.events)
	return out, nil
}
func (h *fixedHistory) Job(_ context.Context, id string) (*protocol.Job, error) {
	if id != h.job.ID {
		return nil, history.ErrNotFound
	}
	j := h.job
	return &j, nil
}
func (h *fixedHistory) ListJobs(context.Context, history.JobFilter) ([]protocol.Job, string, error) {
	return []protocol.Job{h.job}, "", nil
}
func (h *fixedHistory) Close() error { return nil }

// TestHistoryReadsAreRedacted: records written before this fix (a job
// snapshot and a webhook attempt with the URL as given) are redacted when
// the API reads them back.
func TestHistoryReadsAreRedacted(t *testing.T) {
	t.Parallel()
	const secretURL = "https://user:hunter2@hooks.example/cb?token=s3cr3t"
	id := "0b1e6c7d-5a37-4d4b-9a56-5c1f0e1d2a3b"
	now := time.Now()
	job := protocol.Job{ID: id, Blueprint: "demo", Status: protocol.StatusFinished, Client: "client_vip", WebhookURL: secretURL, CreatedAt: &now}
	h := &fixedHistory{job: job, events: []history.Event{
		{ID: "e1", Time: now, Type: history.EventType(engine.EventJobCreated), JobID: id, Job: &job},
		{ID: "e2", Time: now, Type: history.EventType(engine.EventWebhookAttempt), JobID: id, Detail: map[string]any{"url": secretURL, "outcome": "delivered"}},
	}}
	ts := newTestServer(t, func(o *Options) { o.History = h })
	for _, path := range []string{"/api/v1/jobs/" + id, "/api/v1/jobs/" + id + "/history", "/api/v1/jobs"} {
		r := ts.do("GET", path, client(vipToken), nil)
		if r.status != 200 || strings.Contains(string(r.body), "hunter2") || strings.Contains(string(r.body), "s3cr3t") {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	r := ts.do("GET", "/api/v1/jobs/"+id+"/history", client(vipToken), nil)
	var evs []map[string]any
	if err := json.Unmarshal(r.body, &evs); err != nil || len(evs) != 2 {
		t.Fatalf("history: %v %s", err, r.body)
	}
	if d, _ := evs[1]["detail"].(map[string]any); d["url"] != "https://redacted@hooks.example/cb?token=redacted" {
		t.Errorf("webhook attempt detail %v", evs[1]["detail"])
	}
	if h.events[1].Detail["url"] != secretURL {
		t.Error("the read changed the stored event")
	}
}
