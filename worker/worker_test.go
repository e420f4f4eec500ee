package worker

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

func TestRegistrationPayload(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.ID = "gpu-worker-01"
	cfg.Type = "gpu_worker"
	cfg.EnableWebSockets = true
	cfg.MaxConcurrentTasks = 3
	cfg.CostPerSkill = map[string]float64{"analyze_file": 0.002}
	cfg.Extra = map[string]any{"region": "eu"}
	cfg.InstalledSoftware = map[string]string{"ffmpeg": "5.1"}
	cfg.Resources = Resources{
		CPUCores: 8, RAMGB: 32, DisableDetection: true,
		GPUs: []GPU{{ID: "0", Model: "NVIDIA T4", MemoryGB: 16}},
	}
	w := newWorker(t, cfg)
	w.Handle("transcode_video", echo, Price(0.0005), OutputStatuses("needs_review"), Limit(1), Description("ffmpeg"))
	w.Handle("analyze_file", echo, Price(0.5), SkillType("analysis"))
	startWorker(t, w)

	f.waitUntil(3*time.Second, "a registration", func() bool { regs, _, _, _ := f.snapshot(); return len(regs) > 0 })
	regs, _, _, _ := f.snapshot()
	r := regs[0]
	d := r.Doc
	if d["worker_id"] != "gpu-worker-01" || d["worker_type"] != "gpu_worker" {
		t.Errorf("identity: %v %v", d["worker_id"], d["worker_type"])
	}
	if r.Hdrs.Get(protocol.HeaderWorkerToken) != testToken || r.Hdrs.Get(protocol.HeaderWorkerID) != "gpu-worker-01" {
		t.Errorf("headers: %v", r.Hdrs)
	}
	skills := d["supported_skills"].([]any)
	if len(skills) != 2 {
		t.Fatalf("supported_skills: %v", skills)
	}
	s0 := skills[0].(map[string]any)
	if s0["name"] != "transcode_video" || s0["type"] != "transcode_video" || s0["schema_dialect"] != "json-schema" ||
		fmt.Sprint(s0["output_statuses"]) != "[success failure needs_review]" || s0["description"] != "ffmpeg" {
		t.Errorf("skill 0: %v", s0)
	}
	if s1 := skills[1].(map[string]any); s1["name"] != "analyze_file" || s1["type"] != "analysis" {
		t.Errorf("skill 1: %v", s1)
	}
	if fmt.Sprint(d["available_skills"]) != "[transcode_video analyze_file]" {
		t.Errorf("available_skills: %v", d["available_skills"])
	}
	caps := d["capabilities"].(map[string]any)
	cost := caps["cost_per_skill"].(map[string]any)
	if cost["transcode_video"] != 0.0005 || cost["analyze_file"] != 0.002 {
		t.Errorf("cost_per_skill (config wins over Price): %v", cost)
	}
	if caps["websockets"] != true {
		t.Errorf("capabilities.websockets: %v", caps)
	}
	extra := caps["extra"].(map[string]any)
	if extra["websockets"] != true || extra["max_concurrent_tasks"] != 3.0 || extra["region"] != "eu" {
		t.Errorf("capabilities.extra: %v", extra)
	}
	if caps["hostname"] == "" || caps["ip_address"] == "" {
		t.Errorf("hostname/ip: %v", caps)
	}
	res := d["resources"].(map[string]any)
	props := res["properties"].(map[string]any)
	if props["cpu_cores"] != 8.0 || props["ram_gb"] != 32.0 || props["gpu_count"] != 1.0 {
		t.Errorf("resources.properties: %v", props)
	}
	gi := props["gpu_info"].(map[string]any)
	if gi["model"] != "NVIDIA T4" || gi["vram_gb"] != 16.0 {
		t.Errorf("gpu_info: %v", gi)
	}
	devs := res["devices"].([]any)
	dev := devs[0].(map[string]any)
	if dev["type"] != "gpu" || dev["model"] != "NVIDIA T4" || dev["id"] != "0" || dev["properties"].(map[string]any)["memory_gb"] != 16.0 {
		t.Errorf("devices: %v", devs)
	}
	if d["installed_software"].(map[string]any)["ffmpeg"] != "5.1" {
		t.Errorf("installed_software: %v", d["installed_software"])
	}
	if h, _ := d["skills_hash"].(string); len(h) != 64 {
		t.Errorf("skills_hash: %v", d["skills_hash"])
	}
	if sec := d["security"].(map[string]any); sec["signer_id"] != "gpu-worker-01" {
		t.Errorf("security: %v", sec)
	}
}

func TestRegistrationRetriesUntilOrchestratorIsUp(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused

	w := newWorker(t, testConfig("http://"+addr))
	w.Handle("echo", echo)
	startWorker(t, w)
	time.Sleep(300 * time.Millisecond) // several refused attempts

	f := newFakeAt(t, addr)
	f.enqueue(task("t1", "echo", map[string]any{"x": 1.0}))
	res := f.waitResult("t1")
	if res.str("status") != "success" {
		t.Errorf("result: %s", res.Raw)
	}
	// No poll before the first successful registration.
	regs, _, _, _ := f.snapshot()
	f.mu.Lock()
	firstPoll := f.polls[0]
	f.mu.Unlock()
	if firstPoll.Before(regs[0].At) {
		t.Errorf("polled at %v before registering at %v", firstPoll, regs[0].At)
	}
}

func TestRegistrationBackoff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fail("register", 3, failure{status: 503})
	cfg := testConfig(f.URL())
	cfg.RetryDelay, cfg.RetryMaxDelay = 50*time.Millisecond, time.Second
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(5*time.Second, "a successful registration", func() bool { regs, _, _, _ := f.snapshot(); return len(regs) >= 4 })
	regs, _, _, _ := f.snapshot()
	// Exponential back-off: 50ms, 100ms, 200ms (minus up to 20% jitter).
	var gaps []time.Duration
	for i := 1; i < 4; i++ {
		gaps = append(gaps, regs[i].At.Sub(regs[i-1].At))
	}
	if !(gaps[0] >= 40*time.Millisecond && gaps[1] > gaps[0] && gaps[2] > gaps[1]) {
		t.Errorf("registration retry gaps do not grow: %v", gaps)
	}
	if _, ok := regs[3].Doc["worker_id"]; !ok {
		t.Errorf("fourth registration not accepted: %v", regs[3].Doc)
	}
}

func TestRegistration429RetryAfter(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fail("register", 1, failure{status: 429, retryAfter: "1"})
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(5*time.Second, "a second registration", func() bool { regs, _, _, _ := f.snapshot(); return len(regs) >= 2 })
	regs, _, _, _ := f.snapshot()
	if gap := regs[1].At.Sub(regs[0].At); gap < 950*time.Millisecond {
		t.Errorf("registration retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestHeartbeatReRegistersOn404(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(3*time.Second, "a heartbeat", func() bool { _, hbs, _, _ := f.snapshot(); return len(hbs) > 0 })
	f.forget(testWorkerID)
	f.waitUntil(3*time.Second, "a second registration", func() bool { regs, _, _, _ := f.snapshot(); return len(regs) >= 2 })
	// The worker works again afterwards.
	f.enqueue(task("after", "echo", nil))
	f.waitResult("after")
	_, hbs, _, _ := f.snapshot()
	last := hbs[len(hbs)-1].Doc
	if last["status"] != "idle" || last["skills_hash"] == "" {
		t.Errorf("heartbeat: %v", last)
	}
}

func TestHeartbeatSyncsSkills(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(3*time.Second, "two heartbeats", func() bool { _, hbs, _, _ := f.snapshot(); return len(hbs) >= 2 })
	_, hbs, _, _ := f.snapshot()
	for _, hb := range hbs {
		if _, ok := hb.Doc["supported_skills"]; ok {
			t.Errorf("supported_skills sent although the registration synced them: %s", hb.Raw)
		}
		if fmt.Sprint(hb.Doc["available_skills"]) != "[echo]" || hb.Doc["worker_id"] != testWorkerID {
			t.Errorf("heartbeat: %s", hb.Raw)
		}
	}
}

func TestRequireFullSync(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo, Description("echoes"))
	startWorker(t, w)
	f.waitUntil(3*time.Second, "a heartbeat", func() bool { _, hbs, _, _ := f.snapshot(); return len(hbs) > 0 })
	f.mu.Lock()
	f.fullSync = true
	f.mu.Unlock()
	f.waitUntil(3*time.Second, "a heartbeat with supported_skills", func() bool {
		_, hbs, _, _ := f.snapshot()
		for _, hb := range hbs {
			if s, ok := hb.Doc["supported_skills"].([]any); ok && len(s) == 1 {
				return true
			}
		}
		return false
	})
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 3
	w := newWorker(t, cfg)
	var active, peak atomic.Int32
	w.Handle("work", func(ctx context.Context, t *Task) (Result, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		return Result{}, nil
	})
	for i := range 10 {
		f.enqueue(task(fmt.Sprintf("t%d", i), "work", nil))
	}
	startWorker(t, w)
	f.waitUntil(10*time.Second, "10 results", func() bool { _, _, res, _ := f.snapshot(); return len(res) == 10 })
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want exactly 3", p)
	}
	_, hbs, _, _ := f.snapshot()
	sawFull := false
	for _, hb := range hbs {
		if hb.Doc["status"] == "full" {
			sawFull = true
			if _, ok := hb.Doc["available_skills"]; ok {
				t.Errorf("a full worker advertises skills: %s", hb.Raw)
			}
		}
		if ct, ok := hb.Doc["current_tasks"].([]any); ok && len(ct) > 3 {
			t.Errorf("more than 3 current tasks: %s", hb.Raw)
		}
	}
	if !sawFull {
		t.Error("no heartbeat reported status full")
	}
}

func TestSkillLimit(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 4
	w := newWorker(t, cfg)
	var active, peak atomic.Int32
	w.Handle("gpu", func(ctx context.Context, t *Task) (Result, error) {
		n := active.Add(1)
		defer active.Add(-1)
		if n > peak.Load() {
			peak.Store(n)
		}
		time.Sleep(50 * time.Millisecond)
		return Result{}, nil
	}, Limit(1))
	w.Handle("cpu", echo)
	for i := range 4 {
		f.enqueue(task(fmt.Sprintf("g%d", i), "gpu", nil))
	}
	startWorker(t, w)
	f.waitUntil(10*time.Second, "4 results", func() bool { _, _, res, _ := f.snapshot(); return len(res) == 4 })
	if p := peak.Load(); p != 1 {
		t.Errorf("peak concurrency of a Limit(1) skill: %d", p)
	}
	f.mu.Lock()
	queries := append([]string(nil), f.pollQuery...)
	f.mu.Unlock()
	sawCPUOnly := false
	for _, q := range queries {
		if strings.Contains(q, "available_skills=cpu&") || strings.HasSuffix(q, "available_skills=cpu") {
			sawCPUOnly = true
		}
		if !strings.Contains(q, "timeout=1") {
			t.Errorf("poll without timeout: %s", q)
		}
	}
	if !sawCPUOnly {
		t.Errorf("while the gpu skill was at its limit, polls still offered it: %v", queries)
	}
}

func TestProgressEvent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("long", func(ctx context.Context, t *Task) (Result, error) {
		if err := t.SendProgress(ctx, 0.5, "half"); err != nil {
			return Result{}, err
		}
		if err := t.SendEvent(ctx, "checkpoint", map[string]any{"step": 2}); err != nil {
			return Result{}, err
		}
		if err := t.SendProgress(ctx, 1.5, "too far"); err == nil {
			return Result{}, errors.New("progress 1.5 accepted")
		}
		return Result{Data: map[string]any{"ok": true}}, nil
	})
	p := task("t-progress", "long", nil)
	p.JobID = "job-7"
	p.TracingContext = map[string]string{"traceparent": "00-abc-def-01"}
	f.enqueue(p)
	startWorker(t, w)
	if r := f.waitResult("t-progress"); r.str("status") != "success" {
		t.Fatalf("result: %s", r.Raw)
	}
	_, _, _, events := f.snapshot()
	if len(events) != 2 {
		t.Fatalf("events: %d", len(events))
	}
	ev := events[0].Doc
	if ev["event_type"] != "progress" || ev["target_job_id"] != "job-7" || ev["target_task_id"] != "t-progress" ||
		ev["origin_task_id"] != "t-progress" || ev["worker_id"] != testWorkerID || ev["origin_worker_id"] != testWorkerID {
		t.Errorf("progress event: %s", events[0].Raw)
	}
	payload := ev["payload"].(map[string]any)
	if payload["progress"] != 0.5 || payload["message"] != "half" {
		t.Errorf("payload: %v", payload)
	}
	if bc, ok := ev["bubbling_chain"].([]any); !ok || len(bc) != 0 {
		t.Errorf("bubbling_chain must be []: %v", ev["bubbling_chain"])
	}
	if _, err := uuid.Parse(ev["event_id"].(string)); err != nil {
		t.Errorf("event_id: %v", ev["event_id"])
	}
	if tc := ev["trace_context"].(map[string]any); tc["traceparent"] != "00-abc-def-01" {
		t.Errorf("trace_context: %v", tc)
	}
	if c := events[1].Doc; c["event_type"] != "checkpoint" || c["payload"].(map[string]any)["step"] != 2.0 {
		t.Errorf("custom event: %s", events[1].Raw)
	}
}

func TestResultsAndErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 10
	w := newWorker(t, cfg)
	fail := func(err error) Handler {
		return func(context.Context, *Task) (Result, error) { return Result{}, err }
	}
	w.Handle("plain", fail(errors.New("disk on fire")))
	w.Handle("permanent", fail(fmt.Errorf("open: %w", Permanent(errors.New("corrupt file")))))
	w.Handle("invalid", fail(InvalidInput(errors.New("missing video"))))
	w.Handle("security", fail(Security(errors.New("tampered"))))
	w.Handle("exhausted", fail(ResourceExhausted(errors.New("out of VRAM"))))
	w.Handle("coded", fail(&TaskError{Code: protocol.ErrDependency, Message: "db down", Details: map[string]any{"db": "main"}}))
	w.Handle("panics", func(context.Context, *Task) (Result, error) { panic("boom") })
	w.Handle("review", func(context.Context, *Task) (Result, error) {
		return Result{Status: "needs_review", Data: map[string]any{"score": 0.4}, Metadata: map[string]any{"model": "v2"}}, nil
	}, OutputStatuses("needs_review"))
	w.Handle("decode", func(_ context.Context, t *Task) (Result, error) {
		var p struct {
			N int `json:"n"`
		}
		if err := t.Decode(&p); err != nil {
			return Result{}, err
		}
		return Result{Data: map[string]any{"n": p.N}}, nil
	})
	w.Handle("nan", func(context.Context, *Task) (Result, error) {
		return Result{Data: map[string]any{"x": func() {}}}, nil
	})
	want := map[string][2]string{ // task type → status, error code
		"plain":     {"failure", "TRANSIENT_ERROR"},
		"permanent": {"failure", "PERMANENT_ERROR"},
		"invalid":   {"failure", "INVALID_INPUT_ERROR"},
		"security":  {"failure", "SECURITY_ERROR"},
		"exhausted": {"failure", "RESOURCE_EXHAUSTED_ERROR"},
		"coded":     {"failure", "DEPENDENCY_ERROR"},
		"panics":    {"failure", "TRANSIENT_ERROR"},
		"review":    {"needs_review", ""},
		"unknown":   {"failure", "PERMANENT_ERROR"},
		"decode":    {"failure", "INVALID_INPUT_ERROR"},
		"nan":       {"failure", "PERMANENT_ERROR"},
	}
	for typ := range want {
		params := map[string]any{}
		if typ == "decode" {
			params["n"] = "not a number"
		}
		f.enqueue(task("t-"+typ, typ, params))
	}
	startWorker(t, w)
	for typ, st := range want {
		r := f.waitResult("t-" + typ)
		if r.str("status") != st[0] {
			t.Errorf("%s: status %q, want %q (%s)", typ, r.str("status"), st[0], r.Raw)
		}
		e, _ := r.Doc["error"].(map[string]any)
		code, _ := e["code"].(string)
		if code != st[1] {
			t.Errorf("%s: error code %q, want %q (%s)", typ, code, st[1], r.Raw)
		}
		if r.Doc["worker_id"] != testWorkerID || r.Doc["origin_worker_id"] != testWorkerID || r.str("job_id") != "job-t-"+typ {
			t.Errorf("%s: ids: %s", typ, r.Raw)
		}
	}
	msg := func(typ string) string {
		r, _ := f.resultFor("t-" + typ)
		return r.Doc["error"].(map[string]any)["message"].(string)
	}
	if m := msg("plain"); m != "disk on fire" {
		t.Errorf("plain error message %q", m)
	}
	if m := msg("permanent"); m != "corrupt file" {
		t.Errorf("wrapped typed error message %q", m)
	}
	if m := msg("panics"); m != "panic: boom" {
		t.Errorf("panic message %q", m)
	}
	if m := msg("unknown"); m != "Unsupported skill: unknown" {
		t.Errorf("unknown skill message %q", m)
	}
	r, _ := f.resultFor("t-coded")
	if r.Doc["error"].(map[string]any)["details"].(map[string]any)["db"] != "main" {
		t.Errorf("details lost: %s", r.Raw)
	}
	r, _ = f.resultFor("t-review")
	if r.Doc["data"].(map[string]any)["score"] != 0.4 || r.Doc["metadata"].(map[string]any)["model"] != "v2" {
		t.Errorf("custom status result: %s", r.Raw)
	}
}

func TestInputAndOutputSchemas(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 5
	w := newWorker(t, cfg)
	var calls atomic.Int32
	schema := map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"video": map[string]any{"type": "string"}, "n": map[string]any{"type": "integer"}},
		"required":             []string{"video"},
		"additionalProperties": false,
	}
	w.Handle("strict", func(_ context.Context, t *Task) (Result, error) {
		calls.Add(1)
		if t.Params()["video"] == "bad-output" {
			return Result{Data: map[string]any{"size": "big"}}, nil
		}
		return Result{Data: map[string]any{"size": 3}}, nil
	}, InputSchema(schema), OutputSchema(map[string]any{
		"type": "object", "properties": map[string]any{"size": map[string]any{"type": "integer"}},
	}))
	f.enqueue(
		task("missing", "strict", map[string]any{"n": 1}),
		task("extra", "strict", map[string]any{"video": "a", "other": 1}),
		task("ok", "strict", map[string]any{"video": "a", "n": 2}),
		task("bad-out", "strict", map[string]any{"video": "bad-output"}),
	)
	startWorker(t, w)
	for id, code := range map[string]string{"missing": "INVALID_INPUT_ERROR", "extra": "INVALID_INPUT_ERROR", "ok": "", "bad-out": "CONTRACT_VIOLATION_ERROR"} {
		r := f.waitResult(id)
		e, _ := r.Doc["error"].(map[string]any)
		if got, _ := e["code"].(string); got != code {
			t.Errorf("%s: code %q, want %q: %s", id, got, code, r.Raw)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times; invalid input must not reach it", n)
	}
}

func TestResultRetriedOn503ThenAccepted(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	f.fail("result", 2, failure{status: 503})
	f.enqueue(task("t1", "echo", map[string]any{"a": "b"}))
	startWorker(t, w)
	r := f.waitResult("t1")
	if r.str("status") != "success" {
		t.Errorf("result: %s", r.Raw)
	}
	time.Sleep(100 * time.Millisecond)
	_, _, results, _ := f.snapshot()
	if len(results) != 1 {
		t.Errorf("want one accepted result, got %d", len(results))
	}
	// The fake rejects replayed signatures: each attempt was signed anew
	// (it reports violations at cleanup otherwise).
	f.mu.Lock()
	sigs := len(f.sigs)
	f.mu.Unlock()
	if sigs < 3 {
		t.Errorf("want 3 distinct signed result attempts, saw %d signatures", sigs)
	}
}

// TestNextAttemptWhileResultInFlight: the orchestrator retries a failed
// attempt as soon as it has its result, so the next attempt (same task id)
// can arrive before the worker has its answer to that result. It is a new
// attempt, not a repeat delivery: it runs, and its result is sent.
func TestNextAttemptWhileResultInFlight(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	retry := task("t1", "flaky", nil)
	retry.Attempt = 2
	f.resultGate = func(res protocol.TaskResult) {
		if res.TaskID != "t1" || res.Status != "failure" {
			return
		}
		// Hand out attempt 2 and hold this answer back until a poll has
		// taken it and the worker has had time to handle the delivery.
		f.enqueue(retry)
		for len(f.queue) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	}
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("flaky", func(_ context.Context, t *Task) (Result, error) {
		if t.Attempt() == 1 {
			return Result{}, Transient(errors.New("try again"))
		}
		return Result{Data: map[string]any{"attempt": t.Attempt()}}, nil
	})
	f.enqueue(task("t1", "flaky", nil))
	startWorker(t, w)
	f.waitUntil(5*time.Second, "the result of attempt 2", func() bool {
		_, _, results, _ := f.snapshot()
		for _, r := range results {
			if r.str("task_id") == "t1" && r.str("status") == "success" {
				return true
			}
		}
		return false
	})
}

func TestResultNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(f *fakeOrch)
	}{
		{"ignored", func(f *fakeOrch) {
			f.resultResp = func(protocol.TaskResult) any {
				return protocol.ResultResponse{Status: "ignored", Reason: "stale_task"}
			}
		}},
		{"400", func(f *fakeOrch) { f.fail("result", 1, failure{status: 400, body: "bad payload"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.set(f)
			var attempts atomic.Int32
			f.resultResp = wrapCount(f.resultResp, &attempts)
			cfg := testConfig(f.URL())
			cfg.MaxConcurrentTasks = 1 // t1 reports before t2
			w := newWorker(t, cfg)
			w.Handle("echo", echo)
			f.enqueue(task("t1", "echo", nil), task("t2", "echo", nil))
			rw := startWorker(t, w)
			f.waitUntil(3*time.Second, "the second result", func() bool { _, ok := f.resultFor("t2"); return ok })
			time.Sleep(150 * time.Millisecond) // room for a wrong retry
			rw.stop()
			_, _, results, _ := f.snapshot()
			n := 0
			for _, r := range results {
				if r.str("task_id") == "t1" {
					n++
				}
			}
			if tc.name == "ignored" && n != 1 {
				t.Errorf("ignored result sent %d times", n)
			}
			if tc.name == "400" && n != 0 {
				t.Errorf("result retried after a 400 (%d accepted copies)", n)
			}
		})
	}
}

func wrapCount(next func(protocol.TaskResult) any, n *atomic.Int32) func(protocol.TaskResult) any {
	return func(r protocol.TaskResult) any {
		n.Add(1)
		if next != nil {
			return next(r)
		}
		return protocol.ResultResponse{Status: "accepted"}
	}
}

func TestWebSocketCancelAndCommands(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.EnableWebSockets = true
	w := newWorker(t, cfg)
	started := make(chan struct{})
	var handlerErr atomic.Value
	w.Handle("slow", func(ctx context.Context, t *Task) (Result, error) {
		if err := t.SendProgress(ctx, 0.1, "started"); err != nil {
			return Result{}, err
		}
		close(started)
		<-ctx.Done()
		handlerErr.Store(ctx.Err())
		return Result{}, ctx.Err()
	})
	commands := make(chan protocol.Command, 1)
	w.OnCommand("reload_model", func(_ context.Context, cmd protocol.Command) error {
		commands <- cmd
		return errors.New("handler errors are only logged")
	})
	startWorker(t, w)
	// Both ends: the worker's Dial returns when it reads the upgrade, a
	// moment before the orchestrator's side keeps the connection.
	f.waitUntil(3*time.Second, "a WebSocket", func() bool {
		f.mu.Lock()
		served := f.ws != nil
		f.mu.Unlock()
		w.mu.Lock()
		conns := w.conns
		w.mu.Unlock()
		if !served || len(conns) == 0 {
			return false
		}
		conns[0].mu.Lock()
		defer conns[0].mu.Unlock()
		return conns[0].ws != nil
	})
	f.enqueue(task("t-ws", "slow", nil))
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("handler did not start")
	}
	f.command(protocol.Command{Command: "unknown_command"})
	f.command(protocol.Command{Command: "reload_model", Params: map[string]any{"model": "x"}})
	select {
	case cmd := <-commands:
		if cmd.Params["model"] != "x" {
			t.Errorf("command: %+v", cmd)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("custom command not delivered")
	}
	f.command(protocol.Command{Command: protocol.CommandCancelTask, TaskID: "t-ws", JobID: "job-t-ws"})
	r := f.waitResult("t-ws")
	if r.str("status") != "cancelled" {
		t.Errorf("result: %s", r.Raw)
	}
	if _, hasErr := r.Doc["error"]; hasErr {
		t.Errorf("cancelled result with an error: %s", r.Raw)
	}
	if err, _ := handlerErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx error: %v", err)
	}
	f.waitUntil(3*time.Second, "the progress event", func() bool { _, _, _, ev := f.snapshot(); return len(ev) > 0 })
	_, _, _, events := f.snapshot()
	if len(events) != 1 || events[0].Via != "ws" {
		t.Errorf("progress must go over the open WebSocket: %+v", events)
	}
}

func TestHeartbeatCancelTaskIDs(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	started := make(chan struct{})
	w.Handle("slow", func(ctx context.Context, t *Task) (Result, error) {
		close(started)
		select {
		case <-ctx.Done():
			return Result{Data: map[string]any{"partial": true}}, nil // even a "success" after cancel is cancelled
		case <-time.After(5 * time.Second):
			return Result{}, errors.New("not cancelled")
		}
	})
	f.enqueue(task("t-hb", "slow", nil))
	startWorker(t, w)
	<-started
	f.waitUntil(3*time.Second, "a heartbeat listing the task", func() bool {
		_, hbs, _, _ := f.snapshot()
		for _, hb := range hbs {
			if strings.Contains(fmt.Sprint(hb.Doc["current_tasks"]), "t-hb") {
				return true
			}
		}
		return false
	})
	f.mu.Lock()
	f.cancelIDs = []string{"t-hb", "not-running"}
	f.mu.Unlock()
	if r := f.waitResult("t-hb"); r.str("status") != "cancelled" {
		t.Errorf("result: %s", r.Raw)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	started := make(chan struct{})
	w.Handle("slow", func(ctx context.Context, t *Task) (Result, error) {
		close(started)
		time.Sleep(300 * time.Millisecond) // finishes during the drain
		return Result{Data: map[string]any{"done": ctx.Err() == nil}}, nil
	})
	f.enqueue(task("t-drain", "slow", nil))
	rw := startWorker(t, w)
	<-started
	stopped := time.Now()
	if err := rw.stop(); err != nil {
		t.Fatal(err)
	}
	r, ok := f.resultFor("t-drain")
	if !ok || r.str("status") != "success" || r.Doc["data"].(map[string]any)["done"] != true {
		t.Fatalf("the running task must finish and report during the drain: %s", r.Raw)
	}
	_, hbs, _, _ := f.snapshot()
	var offline *received
	for i := range hbs {
		if hbs[i].Doc["status"] == "offline" {
			offline = &hbs[i]
		} else if offline != nil {
			t.Errorf("heartbeat after offline: %s", hbs[i].Raw)
		}
	}
	if offline == nil {
		t.Fatal("no offline heartbeat")
	}
	if offline.At.Before(stopped) || offline.At.After(r.At) {
		t.Errorf("offline heartbeat at %v must come after stop (%v) and before the result (%v)", offline.At, stopped, r.At)
	}
	if !strings.Contains(fmt.Sprint(offline.Doc["current_tasks"]), "t-drain") {
		t.Errorf("offline heartbeat must list the running task: %s", offline.Raw)
	}
	// Polling stopped before the offline heartbeat went out. (A poll the
	// worker aborted may still reach the server a little later.)
	f.mu.Lock()
	lastPoll := f.polls[len(f.polls)-1]
	f.mu.Unlock()
	if lastPoll.After(offline.At.Add(100 * time.Millisecond)) {
		t.Errorf("polled at %v, after the offline heartbeat at %v", lastPoll, offline.At)
	}
}

func TestShutdownTimeoutCancelsTasks(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.ShutdownTimeout = 100 * time.Millisecond
	w := newWorker(t, cfg)
	started := make(chan struct{})
	w.Handle("forever", func(ctx context.Context, t *Task) (Result, error) {
		close(started)
		<-ctx.Done()
		return Result{}, ctx.Err()
	})
	f.enqueue(task("t-forever", "forever", nil))
	rw := startWorker(t, w)
	<-started
	begin := time.Now()
	if err := rw.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if r, ok := f.resultFor("t-forever"); !ok || r.str("status") != "cancelled" {
		t.Errorf("result: %v %s", ok, r.Raw)
	}
}

func TestShutdownReportsStuckHandler(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.ShutdownTimeout = 50 * time.Millisecond
	w := newWorker(t, cfg)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	w.Handle("stuck", func(ctx context.Context, t *Task) (Result, error) {
		close(started)
		<-release // ignores ctx
		return Result{}, nil
	})
	f.enqueue(task("t-stuck", "stuck", nil))
	rw := startWorker(t, w)
	<-started
	if err := rw.stop(); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.resultFor("t-stuck"); !ok || r.str("status") != "cancelled" {
		t.Errorf("a handler ignoring cancellation must still be reported cancelled: %v %s", ok, r.Raw)
	}
}

func TestPoll429RetryAfter(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	f.fail("poll", 1, failure{status: 429, retryAfter: "1"})
	startWorker(t, w)
	f.waitUntil(5*time.Second, "two polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.polls) >= 2 })
	f.mu.Lock()
	gap := f.polls[1].Sub(f.polls[0])
	f.mu.Unlock()
	if gap < 950*time.Millisecond {
		t.Errorf("Retry-After: 1 not honoured: next poll after %v", gap)
	}
}

func TestPoll429WithoutRetryAfterUsesFloor(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	f.fail("poll", 1, failure{status: 429, body: `{"error": "Too Many Requests"}`})
	startWorker(t, w)
	f.waitUntil(5*time.Second, "two polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.polls) >= 2 })
	f.mu.Lock()
	gap := f.polls[1].Sub(f.polls[0])
	f.mu.Unlock()
	if gap < cfg.RateLimitFloor {
		t.Errorf("429 without Retry-After: next poll after %v, want at least %v", gap, cfg.RateLimitFloor)
	}
}

func TestPollErrorsBackOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("echo", echo)
	f.fail("poll", 4, failure{status: 500})
	startWorker(t, w)
	f.waitUntil(5*time.Second, "five polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.polls) >= 5 })
	f.mu.Lock()
	polls := append([]time.Time(nil), f.polls[:5]...)
	f.mu.Unlock()
	for i := 1; i < 5; i++ {
		if gap := polls[i].Sub(polls[i-1]); gap < 15*time.Millisecond {
			t.Errorf("poll %d only %v after an error", i, gap)
		}
	}
	if g1, g4 := polls[1].Sub(polls[0]), polls[4].Sub(polls[3]); g4 <= g1 {
		t.Errorf("poll back-off does not grow: %v then %v", g1, g4)
	}
}

func TestHealthServer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.HealthAddr = "127.0.0.1:0"
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	w.HandleHTTP("GET /metrics", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "# metrics\n")
	}))
	rw := startWorker(t, w)
	var addr net.Addr
	f.waitUntil(3*time.Second, "the health server", func() bool { addr = w.HealthAddr(); return addr != nil })
	for path, want := range map[string]string{"/health": "OK", "/metrics": "# metrics\n"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	rw.stop()
	if _, err := http.Get("http://" + addr.String() + "/health"); err == nil {
		t.Error("health server still up after Run returned")
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	w := newWorker(t, testConfig("http://127.0.0.1:1"))
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no skills") {
		t.Errorf("Run without skills: %v", err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
	// A busy health port is a start-up error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig("http://127.0.0.1:1")
	cfg.HealthAddr = ln.Addr().String()
	w = newWorker(t, cfg)
	w.Handle("echo", echo)
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run with a busy health port succeeded")
	}
}

func TestMultiOrchestratorRouting(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	b.key = "token-b"
	cfg := testConfig(a.URL(), b.URL())
	cfg.Orchestrators[1].Token = "token-b"
	cfg.MaxConcurrentTasks = 4
	w := newWorker(t, cfg)
	var mu sync.Mutex
	release := make(chan struct{})
	seen := map[string]bool{}
	w.Handle("job", func(ctx context.Context, t *Task) (Result, error) {
		mu.Lock()
		seen[t.ID()] = true
		mu.Unlock()
		if err := t.SendProgress(ctx, 0.5, ""); err != nil {
			return Result{}, err
		}
		<-release
		return Result{Data: map[string]any{"by": t.ID()}}, nil
	})
	a.enqueue(task("from-a", "job", nil))
	b.enqueue(task("from-b", "job", nil))
	startWorker(t, w)
	for _, f := range []*fakeOrch{a, b} {
		f.waitUntil(3*time.Second, "a heartbeat with a current task", func() bool {
			_, hbs, _, _ := f.snapshot()
			for _, hb := range hbs {
				if ct, ok := hb.Doc["current_tasks"].([]any); ok && len(ct) > 0 {
					return true
				}
			}
			return false
		})
	}
	close(release)
	ra, rb := a.waitResult("from-a"), b.waitResult("from-b")
	if ra.str("status") != "success" || rb.str("status") != "success" {
		t.Errorf("results: %s %s", ra.Raw, rb.Raw)
	}
	for name, f := range map[string]*fakeOrch{"from-a": a, "from-b": b} {
		_, hbs, results, events := f.snapshot()
		for _, r := range results {
			if r.str("task_id") != name {
				t.Errorf("result of %s sent to the wrong orchestrator", r.str("task_id"))
			}
		}
		for _, e := range events {
			if e.str("target_task_id") != name {
				t.Errorf("event of %s sent to the wrong orchestrator", e.str("target_task_id"))
			}
		}
		for _, hb := range hbs {
			if ct, ok := hb.Doc["current_tasks"].([]any); ok {
				for _, id := range ct {
					if id != name {
						t.Errorf("heartbeat to the orchestrator of %s lists %v", name, id)
					}
				}
			}
		}
	}
}

func TestRoundRobinPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		weights []int
		want    string
	}{
		{[]int{1, 1}, "ABABAB"},
		{[]int{5, 1}, "AAABAA"},
		{[]int{1, 2}, "BABBAB"},
	} {
		var cands []*conn
		for i, wt := range tc.weights {
			cands = append(cands, &conn{o: Orchestrator{URL: string(rune('A' + i)), Weight: wt}})
		}
		var got strings.Builder
		for range 6 {
			got.WriteString(pickRoundRobin(cands).o.URL)
		}
		if got.String() != tc.want {
			t.Errorf("weights %v: %s, want %s", tc.weights, got.String(), tc.want)
		}
	}
}

func TestWaterfallPrefersFirstOrchestrator(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	a.pollWait, b.pollWait = 20*time.Millisecond, 20*time.Millisecond
	cfg := testConfig(a.URL(), b.URL())
	cfg.Orchestrators[0].Priority = 2 // sorted: b first
	cfg.MaxConcurrentTasks = 1
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	for _, f := range []*fakeOrch{a, b} {
		f.waitUntil(3*time.Second, "a poll", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.polls) > 0 })
	}
	t0 := time.Now()
	for i := range 3 {
		b.enqueue(task(fmt.Sprintf("b%d", i), "echo", nil))
	}
	b.waitUntil(3*time.Second, "b's three results", func() bool { _, _, r, _ := b.snapshot(); return len(r) == 3 })
	// a is only polled after b came back empty, i.e. after b's tasks ran
	// (a poll of a begun in the cycle running when the tasks came is fine).
	_, _, bres, _ := b.snapshot()
	a.mu.Lock()
	for _, p := range a.polls {
		if p.After(t0.Add(30*time.Millisecond)) && p.Before(bres[2].At) {
			t.Errorf("lower-priority orchestrator polled at %v while the first still had tasks (last result %v)", p.Sub(t0), bres[2].At.Sub(t0))
		}
	}
	a.mu.Unlock()
	a.enqueue(task("a0", "echo", nil))
	a.waitResult("a0")
}

func TestFailoverPollsAll(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	a.pollWait, b.pollWait = 10*time.Millisecond, 10*time.Millisecond
	cfg := testConfig(a.URL(), b.URL())
	cfg.Mode = Failover
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	a.enqueue(task("a0", "echo", nil))
	b.enqueue(task("b0", "echo", nil))
	startWorker(t, w)
	a.waitResult("a0")
	b.waitResult("b0")
}

func TestSTSTokens(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.STS = true
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(3*time.Second, "a token request", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.tokenReqs > 0 })
	f.waitUntil(3*time.Second, "a heartbeat with the access token", func() bool {
		_, hbs, _, _ := f.snapshot()
		for _, hb := range hbs {
			if hb.Hdrs.Get(protocol.HeaderWorkerToken) == "access-1" {
				return true // and it verified with the master token
			}
		}
		return false
	})
	f.enqueue(task("t-sts", "echo", nil))
	if r := f.waitResult("t-sts"); r.Hdrs.Get(protocol.HeaderWorkerToken) != "access-1" {
		t.Errorf("result sent with token %q", r.Hdrs.Get(protocol.HeaderWorkerToken))
	}
}

func TestMiddlewareOrderAndSetHot(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	var order []string
	var mu sync.Mutex
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, t *Task) (Result, error) {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return next(ctx, t)
			}
		}
	}
	w.Use(mw("outer"), mw("inner"))
	w.Handle("echo", func(ctx context.Context, t *Task) (Result, error) {
		mu.Lock()
		order = append(order, "handler")
		mu.Unlock()
		return Result{}, nil
	})
	startWorker(t, w)
	w.SetHot("echo", true)
	f.waitUntil(3*time.Second, "a heartbeat with hot skills", func() bool {
		_, hbs, _, _ := f.snapshot()
		for _, hb := range hbs {
			if fmt.Sprint(hb.Doc["hot_skills"]) == "[echo]" {
				return true
			}
		}
		return false
	})
	f.waitUntil(3*time.Second, "a poll with hot skills", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.pollQuery) > 0 && strings.Contains(f.pollQuery[len(f.pollQuery)-1], "hot_skills=echo")
	})
	f.enqueue(task("t1", "echo", nil))
	f.waitResult("t1")
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "outer,inner,handler" {
		t.Errorf("middleware order %v", order)
	}
}

func TestTaskAccessors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	got := make(chan string, 1)
	w.Handle("inspect", func(ctx context.Context, t *Task) (Result, error) {
		dl, ok := t.Deadline()
		ctxDl, ctxOK := ctx.Deadline()
		var p struct {
			Path string  `json:"path"`
			N    float64 `json:"n"`
		}
		err := t.Decode(&p)
		got <- fmt.Sprintf("%s %s %s %d %v %v %v %s %v %v %v",
			t.ID(), t.JobID(), t.Type(), t.Attempt(), t.Priority(), ok, ctxOK && ctxDl.Equal(dl), p.Path, p.N, err, t.Metadata()["k"])
		return Result{}, nil
	})
	p := task("t-acc", "inspect", map[string]any{"path": "/in.mp4", "n": 2.5})
	p.Priority = 3
	p.Deadline = protocol.UnixSeconds(time.Now().Add(time.Hour).Unix())
	p.Metadata = map[string]any{"k": "v"}
	f.enqueue(p)
	startWorker(t, w)
	select {
	case s := <-got:
		if s != "t-acc job-t-acc inspect 1 3 true true /in.mp4 2.5 <nil> v" {
			t.Errorf("accessors: %s", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("handler not called")
	}
}

func TestCapacityChecker(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	var open atomic.Bool
	cfg.CapacityChecker = func(skill string) bool { return skill != "vram" || open.Load() }
	w := newWorker(t, cfg)
	w.Handle("vram", echo)
	f.enqueue(task("t-vram", "vram", nil))
	startWorker(t, w)
	f.waitUntil(3*time.Second, "a busy heartbeat", func() bool {
		_, hbs, _, _ := f.snapshot()
		return len(hbs) > 0 && hbs[len(hbs)-1].Doc["status"] == "busy"
	})
	f.mu.Lock()
	polls := len(f.polls)
	f.mu.Unlock()
	if polls != 0 {
		t.Errorf("a busy worker polled %d times", polls)
	}
	open.Store(true)
	w.Refresh()
	f.waitResult("t-vram")
}

func TestSTSTokenRefusedFallsBackToMasterToken(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.STS = true
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(3*time.Second, "a heartbeat with the access token", func() bool {
		_, hbs, _, _ := f.snapshot()
		return len(hbs) > 0 && hbs[len(hbs)-1].Hdrs.Get(protocol.HeaderWorkerToken) == "access-1"
	})
	f.mu.Lock()
	f.revoked["access-1"] = true // the orchestrator forgot it
	delete(f.access, "access-1")
	f.mu.Unlock()
	// The worker drops the refused token, keeps working with the master
	// token, and obtains a new access token through the refresh endpoint.
	f.waitUntil(5*time.Second, "a heartbeat with a new access token", func() bool {
		_, hbs, _, _ := f.snapshot()
		return len(hbs) > 0 && hbs[len(hbs)-1].Hdrs.Get(protocol.HeaderWorkerToken) == "access-2"
	})
	f.enqueue(task("t-after", "echo", nil))
	f.waitResult("t-after")
}

func TestTLSFromEnvironment(t *testing.T) {
	t.Parallel()
	f := newFakeTLS(t)
	caFile := t.TempDir() + "/ca.pem"
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := envFrom(map[string]string{
		"WORKER_ID": testWorkerID, "WORKER_TOKEN": testToken, "ORCHESTRATOR_URL": f.URL(),
		"TLS_CA_PATH": caFile, "WORKER_PORT": "0", "WORKER_DETECT_RESOURCES": "false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if env.TLS == nil || !env.STS {
		t.Fatalf("TLS_CA_PATH must configure TLS and switch STS on: %+v", env)
	}
	cfg := testConfig()
	cfg.Orchestrators, cfg.TLS, cfg.STS, cfg.Resources = env.Orchestrators, env.TLS, env.STS, env.Resources
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	f.enqueue(task("t-tls", "echo", nil))
	startWorker(t, w)
	f.waitResult("t-tls")
	f.waitUntil(3*time.Second, "a token request", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.tokenReqs > 0 })
}

func TestTaskDeadline(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newWorker(t, testConfig(f.URL()))
	w.Handle("slow", func(ctx context.Context, t *Task) (Result, error) {
		<-ctx.Done()
		return Result{}, ctx.Err()
	})
	p := task("t-dl", "slow", nil)
	p.Deadline = protocol.UnixSeconds(time.Now().Add(time.Second).Unix())
	f.enqueue(p)
	startWorker(t, w)
	r := f.waitResult("t-dl")
	if e, _ := r.Doc["error"].(map[string]any); r.str("status") != "failure" || e["code"] != "TIMEOUT_ERROR" {
		t.Errorf("result: %s", r.Raw)
	}
}

func TestBuiltInMetrics(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.HealthAddr = "127.0.0.1:0"
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	w.Handle("broken", func(context.Context, *Task) (Result, error) { return Result{}, Permanent(errors.New("no")) })
	startWorker(t, w)
	f.enqueue(task("m1", "echo", nil), task("m2", "echo", nil), task("m3", "broken", nil))
	for _, id := range []string{"m1", "m2", "m3"} {
		f.waitResult(id)
	}
	want := []string{
		`avtomatika_worker_tasks_total{skill="echo",status="success"} 2`,
		`avtomatika_worker_tasks_total{skill="broken",status="failure"} 1`,
		`avtomatika_worker_task_failures_total{code="PERMANENT_ERROR",skill="broken"} 1`,
		`avtomatika_worker_task_duration_seconds_count{skill="echo"} 2`,
		`avtomatika_worker_tasks_running 0`,
	}
	// A task leaves the running gauge just after its result is sent, so the
	// scrape is repeated until it has caught up.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get("http://" + w.HealthAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := slices.IndexFunc(want, func(s string) bool { return !strings.Contains(body, s) })
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", want[missing], body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentPolls: while tasks keep coming, several long polls run at
// once (at most PollConcurrency, never more than there is room for); when
// the queue is empty, one poll waits, as with a single poller.
func TestConcurrentPolls(t *testing.T) {
	// Not parallel: it counts the polls made in 500 ms of real time.
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 8
	cfg.PollConcurrency = 3
	w := newWorker(t, cfg)
	var active, peak atomic.Int32
	w.Handle("work", func(ctx context.Context, t *Task) (Result, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		return Result{}, nil
	})
	for i := range 60 {
		f.enqueue(task(fmt.Sprintf("t%d", i), "work", nil))
	}
	startWorker(t, w)
	f.waitUntil(20*time.Second, "60 results", func() bool { _, _, res, _ := f.snapshot(); return len(res) == 60 })
	f.mu.Lock()
	busy := len(f.inFlightAt)
	most := slices.Max(f.inFlightAt)
	f.mu.Unlock()
	if most < 2 || most > cfg.PollConcurrency {
		t.Errorf("at most %d polls in flight while tasks flowed, want 2 to %d", most, cfg.PollConcurrency)
	}
	if p := peak.Load(); p > int32(cfg.MaxConcurrentTasks) {
		t.Errorf("%d tasks ran at once, over MaxConcurrentTasks %d", p, cfg.MaxConcurrentTasks)
	}
	// Idle: the fake answers empty polls after 100 ms; several of them
	// pass, each alone (waited for, not timed: a loaded machine is slow).
	var idle []int
	f.waitUntil(20*time.Second, "four polls while idle", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n := busy + cfg.PollConcurrency; len(f.inFlightAt) > n {
			idle = slices.Clone(f.inFlightAt[n:])
		}
		return len(idle) >= 4
	})
	if m := slices.Max(idle); m != 1 {
		t.Errorf("%d polls in flight at once with nothing to do, want 1 (%v)", m, idle)
	}
}

// With OrchestratorSecretKey, only tasks the orchestrator signed with it
// run; the others, and a task its policy does not allow, are answered
// with SECURITY_ERROR without running the handler.
func TestTaskSignatureAndPolicy(t *testing.T) {
	const key = "orchestrator-secret"
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.OrchestratorSecretKey = key
	w := newWorker(t, cfg)
	var ran atomic.Int32
	w.Handle("echo", func(ctx context.Context, t *Task) (Result, error) {
		ran.Add(1)
		return echo(ctx, t)
	})
	signed := func(id string, mutate func(*protocol.TaskPayload)) protocol.TaskPayload {
		p := task(id, "echo", map[string]any{"n": 1.0})
		p.JobID = "job-" + id
		if mutate != nil {
			mutate(&p)
		}
		if err := protocol.SignTask(&p, key); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := signed("good", nil)
	unsigned := task("unsigned", "echo", map[string]any{"n": 1.0})
	tampered := signed("tampered", nil)
	tampered.Params = map[string]any{"n": 2.0}
	otherKey := task("other-key", "echo", map[string]any{})
	otherKey.JobID = "job-other-key"
	_ = protocol.SignTask(&otherKey, "another key")
	allowed := signed("allowed", func(p *protocol.TaskPayload) { p.Policy = map[string]any{"allowed_skills": []any{"echo"}} })
	denied := signed("denied", func(p *protocol.TaskPayload) { p.Policy = map[string]any{"allowed_skills": []any{"resize"}} })
	f.enqueue(good, unsigned, tampered, otherKey, allowed, denied)
	startWorker(t, w)
	for id, want := range map[string]string{"good": "", "allowed": "", "unsigned": "carries none", "tampered": "signature mismatch",
		"other-key": "signature mismatch", "denied": "not permitted by the task's policy"} {
		r := f.waitResult(id)
		e, _ := r.Doc["error"].(map[string]any)
		switch {
		case want == "" && r.str("status") != "success":
			t.Errorf("%s: %s", id, r.Raw)
		case want != "" && (r.str("status") != "failure" || e["code"] != protocol.ErrSecurity || !strings.Contains(fmt.Sprint(e["message"]), want)):
			t.Errorf("%s: %s, want SECURITY_ERROR %q", id, r.Raw, want)
		}
	}
	if n := ran.Load(); n != 2 {
		t.Errorf("the handler ran %d times, want 2", n)
	}
}

// A result asks for the next task in its answer when its slot may take
// one: with one slot, every task after the first comes with the previous
// task's result rather than by a poll.
func TestNextTaskComesWithResult(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handOver = true
	cfg := testConfig(f.URL())
	cfg.MaxConcurrentTasks = 1
	w := newWorker(t, cfg)
	w.Handle("work", func(ctx context.Context, t *Task) (Result, error) {
		// Returning before the poll that brought the task is over would
		// leave no room to ask with the result: a poll asks instead.
		w.waitFor(ctx, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.polling == 0 })
		return Result{}, nil
	})
	for i := range 5 {
		f.enqueue(task(fmt.Sprintf("t%d", i), "work", map[string]any{"i": i}))
	}
	startWorker(t, w)
	for i := range 5 {
		if r := f.waitResult(fmt.Sprintf("t%d", i)); r.str("status") != "success" {
			t.Fatalf("t%d: %s", i, r.Raw)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.polledTasks != 1 || f.handedOver != 4 {
		t.Errorf("%d tasks came by poll and %d with a result, want 1 and 4", f.polledTasks, f.handedOver)
	}
	for i, q := range f.resultQuery {
		if q != protocol.QueryNext+"=1" {
			t.Errorf("result %d sent with query %q, want it to ask for the next task", i, q)
		}
	}
}
