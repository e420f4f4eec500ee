package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// envFrom runs configFromEnv over a fixed environment.
func envFrom(vars map[string]string) (Config, error) {
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	return configFromEnv(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}, environ)
}

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := envFrom(map[string]string{"WORKER_TOKEN": "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.ID, "worker-") || !validIdent(cfg.ID) {
		t.Errorf("default ID = %q", cfg.ID)
	}
	if cfg.HealthAddr != "" {
		t.Errorf("HealthAddr = %q, want none unless WORKER_PORT is set", cfg.HealthAddr)
	}
	want := []Orchestrator{{URL: "http://localhost:8080", Priority: 1, Weight: 1}}
	if !reflect.DeepEqual(cfg.Orchestrators, want) {
		t.Errorf("Orchestrators = %+v, want %+v", cfg.Orchestrators, want)
	}
	if cfg.Token != "tok" || cfg.EnableWebSockets || cfg.STS || cfg.TLS != nil {
		t.Errorf("unexpected credentials/flags: %+v", cfg)
	}
	full, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if full.MaxConcurrentTasks != 10 || full.HeartbeatInterval != 10*time.Second || full.Mode != Waterfall ||
		full.ResultMaxRetries != 5 || full.PollTimeout != 30*time.Second || full.RateLimitFloor != 30*time.Second ||
		full.ShutdownTimeout != 30*time.Second || full.Type != "generic-worker" || full.PollErrorDelay != 5*time.Second {
		t.Errorf("defaults not applied: %+v", full)
	}
}

func TestConfigFromEnvValues(t *testing.T) {
	t.Parallel()
	cfg, err := envFrom(map[string]string{
		"WORKER_ID":                       "gpu-worker-01",
		"WORKER_TYPE":                     "gpu_worker",
		"WORKER_PORT":                     "9100",
		"WORKER_TOKEN":                    "global",
		"WORKER_INDIVIDUAL_TOKEN":         "individual",
		"ORCHESTRATOR_SECRET_KEY":         "task-key",
		"COST_PER_SKILL":                  `{"transcode_video": 0.0005, "resize": 1}`,
		"MAX_CONCURRENT_TASKS":            "3",
		"TASK_POLL_CONCURRENCY":           "2",
		"CPU_CORES":                       "8",
		"RAM_GB":                          "32",
		"GPU_MODEL":                       "NVIDIA T4",
		"GPU_VRAM_GB":                     "16",
		"WORKER_DEVICES":                  `[{"type":"fpga","model":"Xilinx U250","id":"f0"}]`,
		"INSTALLED_SOFTWARE":              `{"ffmpeg":"5.1"}`,
		"INSTALLED_ARTIFACTS":             `[{"name":"sd-1.5","version":"1.0"}]`,
		"WORKER_EXTRA_REGION":             "eu-west",
		"WORKER_EXTRA_LABELS":             `{"tier": "gold", "n": 2}`,
		"WORKER_EXTRA_ZONES":              `["a","b"]`,
		"WORKER_ENABLE_WEBSOCKETS":        "true",
		"MULTI_ORCHESTRATOR_MODE":         "round_robin",
		"HEARTBEAT_INTERVAL":              "7.5",
		"WORKER_HEARTBEAT_COOLDOWN":       "0",
		"IDLE_POLL_DELAY":                 "0",
		"TASK_POLL_TIMEOUT":               "20",
		"TASK_POLL_ERROR_DELAY":           "2",
		"RATE_LIMIT_BACKOFF_FLOOR":        "10",
		"RESULT_MAX_RETRIES":              "7",
		"RESULT_RETRY_INITIAL_DELAY":      "0.5",
		"WORKER_SHUTDOWN_TIMEOUT":         "12",
		"REGISTRATION_RETRY_MAX_DELAY":    "30",
		"WORKER_HEARTBEAT_DEBOUNCE_DELAY": "0.2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "gpu-worker-01" || cfg.Type != "gpu_worker" || cfg.HealthAddr != ":9100" {
		t.Errorf("identity: %q %q %q", cfg.ID, cfg.Type, cfg.HealthAddr)
	}
	if cfg.OrchestratorSecretKey != "task-key" {
		t.Errorf("OrchestratorSecretKey = %q", cfg.OrchestratorSecretKey)
	}
	if cfg.Token != "individual" {
		t.Errorf("WORKER_INDIVIDUAL_TOKEN must win over WORKER_TOKEN, got %q", cfg.Token)
	}
	if !reflect.DeepEqual(cfg.CostPerSkill, map[string]float64{"transcode_video": 0.0005, "resize": 1}) {
		t.Errorf("CostPerSkill = %v", cfg.CostPerSkill)
	}
	if cfg.MaxConcurrentTasks != 3 || cfg.PollConcurrency != 2 || cfg.Resources.CPUCores != 8 || cfg.Resources.RAMGB != 32 {
		t.Errorf("capacity: %+v", cfg)
	}
	if want := []GPU{{ID: "0", Model: "NVIDIA T4", MemoryGB: 16}}; !reflect.DeepEqual(cfg.Resources.GPUs, want) {
		t.Errorf("GPUs = %+v", cfg.Resources.GPUs)
	}
	if len(cfg.Resources.Devices) != 1 || cfg.Resources.Devices[0].Model != "Xilinx U250" {
		t.Errorf("Devices = %+v", cfg.Resources.Devices)
	}
	if cfg.InstalledSoftware["ffmpeg"] != "5.1" || len(cfg.InstalledArtifacts) != 1 || cfg.InstalledArtifacts[0].Name != "sd-1.5" {
		t.Errorf("installed: %v %v", cfg.InstalledSoftware, cfg.InstalledArtifacts)
	}
	wantExtra := map[string]any{
		"region": "eu-west",
		"labels": map[string]any{"tier": "gold", "n": 2.0},
		"zones":  []any{"a", "b"},
	}
	if !reflect.DeepEqual(cfg.Extra, wantExtra) {
		t.Errorf("Extra = %#v, want %#v", cfg.Extra, wantExtra)
	}
	if !cfg.EnableWebSockets || cfg.Mode != RoundRobin {
		t.Errorf("ws %v mode %q", cfg.EnableWebSockets, cfg.Mode)
	}
	if cfg.HeartbeatInterval != 7500*time.Millisecond || cfg.HeartbeatCooldown != time.Nanosecond ||
		cfg.HeartbeatDebounce != 200*time.Millisecond || cfg.IdlePollDelay >= 0 ||
		cfg.PollTimeout != 20*time.Second || cfg.PollErrorDelay != 2*time.Second ||
		cfg.RateLimitFloor != 10*time.Second || cfg.ResultMaxRetries != 7 ||
		cfg.ResultRetryDelay != 500*time.Millisecond || cfg.ShutdownTimeout != 12*time.Second ||
		cfg.RetryMaxDelay != 30*time.Second {
		t.Errorf("timing: %+v", cfg)
	}
	full, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if full.IdlePollDelay != 0 {
		t.Errorf("IDLE_POLL_DELAY=0 must mean no delay, got %v", full.IdlePollDelay)
	}
}

func TestConfigFromEnvOrchestrators(t *testing.T) {
	t.Parallel()
	cfg, err := envFrom(map[string]string{
		"WORKER_TOKEN":     "tok",
		"ORCHESTRATOR_URL": "http://single:8080",
		"ORCHESTRATORS_CONFIG": `[
			{"url": "http://c:8080"},
			{"url": "http://b:8080", "priority": 1, "weight": 5, "token": "tok-b"},
			{"url": "http://a:8080", "priority": 10, "weight": 2},
			{"url": "ws://d:8080", "priority": "1"}
		]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Orchestrator{
		{URL: "http://b:8080", Priority: 1, Weight: 5, Token: "tok-b"},
		{URL: "ws://d:8080", Priority: 1, Weight: 1},
		{URL: "http://a:8080", Priority: 10, Weight: 2},
		{URL: "http://c:8080", Priority: 10, Weight: 1},
	}
	if !reflect.DeepEqual(cfg.Orchestrators, want) {
		t.Errorf("Orchestrators =\n%+v\nwant\n%+v", cfg.Orchestrators, want)
	}

	// Invalid JSON falls back to ORCHESTRATOR_URL (and to its default).
	for _, vars := range []map[string]string{
		{"WORKER_TOKEN": "t", "ORCHESTRATORS_CONFIG": `[{"url": `, "ORCHESTRATOR_URL": "http://single:8080"},
		{"WORKER_TOKEN": "t", "ORCHESTRATORS_CONFIG": `{"url": "http://x"}`},
	} {
		cfg, err := envFrom(vars)
		if err != nil {
			t.Fatalf("%v: %v", vars, err)
		}
		wantURL := "http://localhost:8080"
		if u, ok := vars["ORCHESTRATOR_URL"]; ok {
			wantURL = u
		}
		if len(cfg.Orchestrators) != 1 || cfg.Orchestrators[0].URL != wantURL {
			t.Errorf("%v: fallback = %+v", vars, cfg.Orchestrators)
		}
	}

	// An entry without url, or with a bad weight, is an error.
	for _, raw := range []string{`[{"priority": 1}]`, `[{"url": "http://a", "weight": 0}]`, `[{"url": "ftp://a"}]`, `[]`} {
		if _, err := envFrom(map[string]string{"WORKER_TOKEN": "t", "ORCHESTRATORS_CONFIG": raw}); err == nil {
			t.Errorf("ORCHESTRATORS_CONFIG=%s: no error", raw)
		}
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"worker id with space":  {"WORKER_ID": "my worker"},
		"worker id with slash":  {"WORKER_ID": "a/b"},
		"max tasks":             {"MAX_CONCURRENT_TASKS": "zero"},
		"max tasks zero":        {"MAX_CONCURRENT_TASKS": "0"},
		"poll concurrency zero": {"TASK_POLL_CONCURRENCY": "0"},
		"cost not JSON":         {"COST_PER_SKILL": "{"},
		"cost negative":         {"COST_PER_SKILL": `{"a": -1}`},
		"cost not numbers":      {"COST_PER_SKILL": `{"a": "cheap"}`},
		"devices without type":  {"WORKER_DEVICES": `[{"model": "x"}]`},
		"extra bad JSON":        {"WORKER_EXTRA_LABELS": "{oops"},
		"heartbeat interval":    {"HEARTBEAT_INTERVAL": "-1"},
		"heartbeat zero":        {"HEARTBEAT_INTERVAL": "0"},
		"websockets not a bool": {"WORKER_ENABLE_WEBSOCKETS": "maybe"},
		"mode":                  {"MULTI_ORCHESTRATOR_MODE": "RANDOM"},
		"port":                  {"WORKER_PORT": "99999"},
		"tls half":              {"TLS_CERT_PATH": "/nonexistent.pem"},
		"log level":             {"LOG_LEVEL": "LOUD"},
	} {
		vars["WORKER_TOKEN"] = "t"
		_, err := envFrom(vars)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for k := range vars {
			if k != "WORKER_TOKEN" && !strings.Contains(err.Error(), k) {
				t.Errorf("%s: error %q does not name %s", name, err, k)
			}
		}
	}
	// Several bad values are reported together.
	_, err := envFrom(map[string]string{"WORKER_ID": "a b", "CPU_CORES": "many"})
	if err == nil || !strings.Contains(err.Error(), "WORKER_ID") || !strings.Contains(err.Error(), "CPU_CORES") {
		t.Errorf("want both errors, got %v", err)
	}
}

func TestConfigFromEnvPortZeroDisablesHealth(t *testing.T) {
	t.Parallel()
	cfg, err := envFrom(map[string]string{"WORKER_PORT": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HealthAddr != "" {
		t.Errorf("HealthAddr = %q", cfg.HealthAddr)
	}
}

func TestConfigFromEnvProcess(t *testing.T) {
	t.Setenv("WORKER_ID", "env-worker")
	t.Setenv("WORKER_TOKEN", "tok")
	t.Setenv("WORKER_EXTRA_GPU_VENDOR", "nvidia")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "env-worker" || cfg.Extra["gpu_vendor"] != "nvidia" {
		t.Errorf("ConfigFromEnv: %+v", cfg)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"bad id":           {ID: "a b", Token: "t", Orchestrators: []Orchestrator{{URL: "http://x"}}},
		"no orchestrator":  {ID: "a", Token: "t"},
		"bad url":          {ID: "a", Token: "t", Orchestrators: []Orchestrator{{URL: "localhost:8080"}}},
		"no token":         {ID: "a", Orchestrators: []Orchestrator{{URL: "http://x"}}},
		"bad mode":         {ID: "a", Token: "t", Mode: "X", Orchestrators: []Orchestrator{{URL: "http://x"}}},
		"negative workers": {ID: "a", Token: "t", MaxConcurrentTasks: -1, Orchestrators: []Orchestrator{{URL: "http://x"}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	// A per-orchestrator token is enough.
	if _, err := New(Config{Orchestrators: []Orchestrator{{URL: "https://x", Token: "t"}}}); err != nil {
		t.Errorf("per-orchestrator token: %v", err)
	}
}

func TestSortOrchestratorsIsStable(t *testing.T) {
	t.Parallel()
	got := sortOrchestrators([]Orchestrator{{URL: "http://z"}, {URL: "http://a", Priority: -1}, {URL: "http://m"}})
	var urls []string
	for _, o := range got {
		urls = append(urls, o.URL)
	}
	if strings.Join(urls, " ") != "http://a http://z http://m" {
		t.Errorf("order %v", urls)
	}
}

func TestHandlePanicsOnMisuse(t *testing.T) {
	t.Parallel()
	w := newWorker(t, testConfig("http://127.0.0.1:1"))
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	w.Handle("ok", echo)
	mustPanic("duplicate", func() { w.Handle("ok", echo) })
	mustPanic("bad name", func() { w.Handle("no spaces", echo) })
	mustPanic("bad type", func() { w.Handle("x", echo, SkillType("a/b")) })
	mustPanic("nil handler", func() { w.Handle("y", nil) })
	mustPanic("bad schema", func() { w.Handle("z", echo, InputSchema(map[string]any{"type": "strng"})) })
	mustPanic("cancel_task command", func() { w.OnCommand("cancel_task", func(context.Context, protocol.Command) error { return nil }) })
}

func TestErrorsMapToCodes(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	for _, tc := range []struct {
		err  error
		code string
		msg  string
	}{
		{base, "TRANSIENT_ERROR", "boom"},
		{Transient(base), "TRANSIENT_ERROR", "boom"},
		{Permanent(base), "PERMANENT_ERROR", "boom"},
		{InvalidInput(base), "INVALID_INPUT_ERROR", "boom"},
		{IntegrityMismatch(base), "INTEGRITY_MISMATCH_ERROR", "boom"},
		{Security(base), "SECURITY_ERROR", "boom"},
		{Dependency(base), "DEPENDENCY_ERROR", "boom"},
		{ResourceExhausted(base), "RESOURCE_EXHAUSTED_ERROR", "boom"},
		{Timeout(base), "TIMEOUT_ERROR", "boom"},
		{Internal(base), "INTERNAL_ERROR", "boom"},
		{ContractViolation(base), "CONTRACT_VIOLATION_ERROR", "boom"},
		{Errorf("PERMANENT_ERROR", "bad %s", "file"), "PERMANENT_ERROR", "bad file"},
		{NewError("DEPENDENCY_ERROR", nil), "DEPENDENCY_ERROR", "DEPENDENCY_ERROR"},
		{&TaskError{Code: "SECURITY_ERROR", Message: "tampered", Details: map[string]any{"k": 1}}, "SECURITY_ERROR", "tampered"},
		{errorsJoin(Permanent(base)), "PERMANENT_ERROR", "boom"},
		{ctxDeadline(), "TIMEOUT_ERROR", "waiting: context deadline exceeded"},
	} {
		got := toWireError(tc.err)
		if got.Code != tc.code || got.Message != tc.msg {
			t.Errorf("%v: got %s %q, want %s %q", tc.err, got.Code, got.Message, tc.code, tc.msg)
		}
	}
	var te *TaskError
	if !errors.As(Permanent(base), &te) || !errors.Is(Permanent(base), base) {
		t.Error("TaskError must unwrap to its cause")
	}
}

func errorsJoin(err error) error { return fmt.Errorf("stage two: %w", err) }

func ctxDeadline() error { return fmt.Errorf("waiting: %w", context.DeadlineExceeded) }

func TestConfigFromEnvWithDefaults(t *testing.T) {
	t.Setenv("WORKER_ID", "from-env")
	cfg, err := ConfigFromEnvWithDefaults(map[string]string{
		"WORKER_ID": "from-defaults", "WORKER_TOKEN": "tok", "MAX_CONCURRENT_TASKS": "2",
		"COST_PER_SKILL": `{"analyze_file": 0.0001}`, "WORKER_EXTRA_REGION": "eu",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "from-env" || cfg.Token != "tok" || cfg.MaxConcurrentTasks != 2 || cfg.CostPerSkill["analyze_file"] != 0.0001 || cfg.Extra["region"] != "eu" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestConfigFromVarsIgnoresTheEnvironment(t *testing.T) {
	t.Setenv("WORKER_ID", "from-env")
	cfg, err := ConfigFromVars(map[string]string{"WORKER_ID": "w-7", "WORKER_TOKEN": "tok", "WORKER_EXTRA_ZONE": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "w-7" || cfg.Extra["zone"] != "b" {
		t.Fatalf("config %+v", cfg)
	}
}
