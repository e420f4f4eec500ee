package worker

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnvHealthAddr(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"":                "",
		"0":               "",
		"8083":            ":8083",
		" 9100 ":          ":9100",
		":9100":           ":9100",
		"127.0.0.1:8083":  "127.0.0.1:8083",
		"127.0.0.1:0":     "127.0.0.1:0",
		"localhost:65535": "localhost:65535",
		"[::1]:8083":      "[::1]:8083",
	} {
		cfg, err := envFrom(map[string]string{"WORKER_TOKEN": "tok", "WORKER_PORT": v})
		if err != nil {
			t.Errorf("WORKER_PORT=%q: %v", v, err)
			continue
		}
		if cfg.HealthAddr != want {
			t.Errorf("WORKER_PORT=%q: HealthAddr = %q, want %q", v, cfg.HealthAddr, want)
		}
	}
	for _, v := range []string{"-1", "65536", "http", "host:", "host:port", "1.2.3.4:99999", "a:b:c"} {
		_, err := envFrom(map[string]string{"WORKER_TOKEN": "tok", "WORKER_PORT": v})
		if err == nil || !strings.Contains(err.Error(), "WORKER_PORT") {
			t.Errorf("WORKER_PORT=%q: want an error naming WORKER_PORT, got %v", v, err)
		}
	}
}

// Two workers configured from the environment alone run side by side on one
// host: neither opens a health server that the other would collide with.
func TestTwoWorkersFromEnvShareAHost(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var workers []*Worker
	for _, id := range []string{"w1", "w2"} {
		cfg, err := ConfigFromVars(map[string]string{
			"WORKER_ID": id, "WORKER_TOKEN": testToken, "ORCHESTRATOR_URL": f.URL(),
			"WORKER_DETECT_RESOURCES": "false", "REGISTRATION_RETRY_INITIAL_DELAY": "0.02",
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = testLogger()
		w := newWorker(t, cfg)
		w.Handle("echo", echo)
		startWorker(t, w)
		workers = append(workers, w)
	}
	f.waitUntil(5*time.Second, "both workers registered", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.known["w1"] && f.known["w2"]
	})
	for _, w := range workers {
		if addr := w.HealthAddr(); addr != nil {
			t.Errorf("worker %s serves health on %s without WORKER_PORT", w.cfg.ID, addr)
		}
	}
}

// An explicit WORKER_PORT host:port starts the health server there.
func TestHealthServerFromWorkerPort(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg, err := ConfigFromVars(map[string]string{
		"WORKER_ID": "w1", "WORKER_TOKEN": testToken, "ORCHESTRATOR_URL": f.URL(),
		"WORKER_DETECT_RESOURCES": "false", "WORKER_PORT": "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger()
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(3*time.Second, "the health server", func() bool { return w.HealthAddr() != nil })
	resp, err := http.Get("http://" + w.HealthAddr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health: %s", resp.Status)
	}
}
