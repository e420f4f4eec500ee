package worker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// refusingOrchestrator answers every request with status and the body the
// real orchestrator sends, counting registrations.
func refusingOrchestrator(t *testing.T, status int, msg string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var regs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == protocol.PathRegister {
			regs.Add(1)
		}
		writeJSON(w, status, protocol.ErrorBody{Error: msg})
	}))
	t.Cleanup(srv.Close)
	return srv, &regs
}

// runUntilReturn runs w and waits for Run to return on its own.
func runUntilReturn(t *testing.T, w *Worker, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		cancel()
		<-done
		t.Fatalf("Run still retrying after %v", within)
		return nil
	}
}

func TestWrongTokenStopsRegistrationAndNamesWorkerToken(t *testing.T) {
	t.Parallel()
	srv, regs := refusingOrchestrator(t, http.StatusForbidden, "Unauthorized: No valid token found")
	cfg, err := ConfigFromVars(map[string]string{
		"WORKER_ID": "gpu-worker-01", "WORKER_TOKEN": "wrong-token", "ORCHESTRATOR_URL": srv.URL,
		"WORKER_DETECT_RESOURCES": "false", "REGISTRATION_RETRY_INITIAL_DELAY": "0.01",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger()
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	err = runUntilReturn(t, w, 10*time.Second)
	if err == nil {
		t.Fatal("Run returned nil although the orchestrator refused every registration")
	}
	if !errors.Is(err, ErrCredentialsRejected) {
		t.Errorf("error does not wrap ErrCredentialsRejected: %v", err)
	}
	for _, want := range []string{"WORKER_TOKEN", `WORKER_ID="gpu-worker-01"`, "HTTP 403", "No valid token found", srv.URL} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error leaks the token: %v", err)
	}
	if n := regs.Load(); n != 3 {
		t.Errorf("%d registrations, want 3 (the default)", n)
	}
}

func TestRegistrationMaxAuthFailuresFromEnv(t *testing.T) {
	t.Parallel()
	srv, regs := refusingOrchestrator(t, http.StatusUnauthorized, "Unauthorized: Invalid individual worker token")
	cfg, err := ConfigFromVars(map[string]string{
		"WORKER_ID": "w1", "WORKER_TOKEN": "wrong", "ORCHESTRATOR_URL": srv.URL, "WORKER_DETECT_RESOURCES": "false",
		"REGISTRATION_RETRY_INITIAL_DELAY": "0.01", "REGISTRATION_MAX_AUTH_FAILURES": "5",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger()
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	if err := runUntilReturn(t, w, 10*time.Second); !errors.Is(err, ErrCredentialsRejected) || !strings.Contains(err.Error(), "5 times") {
		t.Errorf("Run: %v", err)
	}
	if n := regs.Load(); n != 5 {
		t.Errorf("%d registrations, want 5", n)
	}
}

func TestRegistrationMaxAuthFailuresEnvValues(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]int{"": 0, "0": -1, "1": 1, "10": 10} {
		cfg, err := envFrom(map[string]string{"WORKER_TOKEN": "tok", "REGISTRATION_MAX_AUTH_FAILURES": v})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if cfg.RegistrationMaxAuthFailures != want {
			t.Errorf("REGISTRATION_MAX_AUTH_FAILURES=%q: %d, want %d", v, cfg.RegistrationMaxAuthFailures, want)
		}
	}
	if _, err := envFrom(map[string]string{"WORKER_TOKEN": "tok", "REGISTRATION_MAX_AUTH_FAILURES": "-1"}); err == nil ||
		!strings.Contains(err.Error(), "REGISTRATION_MAX_AUTH_FAILURES") {
		t.Errorf("-1: %v", err)
	}
	full, err := Config{Token: "t", Orchestrators: []Orchestrator{{URL: "http://x"}}}.withDefaults()
	if err != nil || full.RegistrationMaxAuthFailures != 3 {
		t.Errorf("default: %d, %v", full.RegistrationMaxAuthFailures, err)
	}
}

// Server errors are not the operator's to fix: registration goes on past
// the auth-failure limit, and succeeds when the orchestrator recovers.
func TestRegistrationKeepsRetryingServerErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fail("register", 6, failure{status: 503})
	cfg := testConfig(f.URL())
	cfg.RetryDelay, cfg.RetryMaxDelay = 5*time.Millisecond, 20*time.Millisecond
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(5*time.Second, "a registration after six 503s", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.known[testWorkerID]
	})
}

// With several orchestrators, one refusing the credentials is logged and
// left; the worker keeps serving the others.
func TestOneRefusingOrchestratorOfTwo(t *testing.T) {
	t.Parallel()
	srv, regs := refusingOrchestrator(t, http.StatusForbidden, "Unauthorized: No valid token found")
	f := newFake(t)
	cfg := testConfig(srv.URL, f.URL())
	cfg.RetryDelay = 5 * time.Millisecond
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	rw := startWorker(t, w)
	f.enqueue(task("t1", "echo", nil))
	f.waitResult("t1")
	deadline := time.Now().Add(5 * time.Second)
	for regs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a fourth registration, were there one
	if n := regs.Load(); n != 3 {
		t.Errorf("%d registrations at the refusing orchestrator, want 3", n)
	}
	select {
	case err := <-rw.done:
		rw.done <- err
		t.Fatalf("Run returned while another orchestrator still serves: %v", err)
	default:
	}
}

func TestCredentialsHint(t *testing.T) {
	t.Parallel()
	w := newWorker(t, testConfig("http://a.example", "http://b.example"))
	global := newConn(w, Orchestrator{URL: "http://a.example"})
	own := newConn(w, Orchestrator{URL: "http://b.example", Token: "per-orch"})
	refused := &httpError{Status: 403, Message: "Unauthorized: No valid token found"}
	if h := global.credentialsHint(refused); !strings.Contains(h, "WORKER_TOKEN") || !strings.Contains(h, `WORKER_ID="w1"`) {
		t.Errorf("hint: %s", h)
	}
	if h := own.credentialsHint(refused); !strings.Contains(h, "ORCHESTRATORS_CONFIG") || !strings.Contains(h, "http://b.example") || strings.Contains(h, "per-orch") {
		t.Errorf("per-orchestrator hint: %s", h)
	}
	stale := &httpError{Status: 403, Message: protocol.ErrStaleTimestamp.Error()}
	if h := global.credentialsHint(stale); !strings.Contains(h, "clock") {
		t.Errorf("stale timestamp hint: %s", h)
	}
}
