package orchestrator_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// A worker that dies mid-task, as a process: the test binary doubles as an
// SDK worker (AVTO_HELPER_WORKER=<worker id>, see TestMain) that serves the
// skill "work" for the orchestrator at ORCHESTRATOR_URL. Its handler writes
// <pid>.started into AVTO_HELPER_WORKER_DIR, then either holds the task
// until the process is killed (AVTO_HELPER_WORKER_MODE=hold) or answers
// with its pid (ok).
func runHelperWorker() int {
	hold := os.Getenv("AVTO_HELPER_WORKER_MODE") == "hold"
	dir := os.Getenv("AVTO_HELPER_WORKER_DIR")
	w, err := worker.New(worker.Config{
		ID: os.Getenv("AVTO_HELPER_WORKER"), Token: "tok", Logger: quiet(),
		Orchestrators: []worker.Orchestrator{{URL: os.Getenv("ORCHESTRATOR_URL")}},
		PollTimeout:   time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Resources: worker.Resources{DisableDetection: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w.Handle("work", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		pid := strconv.Itoa(os.Getpid())
		if err := os.WriteFile(filepath.Join(dir, pid+".started"), []byte(t.ID()), 0o600); err != nil {
			return worker.Result{}, err
		}
		if hold {
			<-ctx.Done()
			return worker.Result{}, ctx.Err()
		}
		return worker.Result{Data: map[string]any{"done_by": pid}}, nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperWorker is a worker child process.
type helperWorker struct {
	cmd  *exec.Cmd
	pid  string
	done chan struct{}
	mu   sync.Mutex
	out  []byte
}

func (h *helperWorker) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out = append(h.out, p...)
	return len(p), nil
}

// startWorkerProcess starts a worker process with id for the orchestrator
// at url, holding its tasks (hold) or finishing them; dir receives the
// handler's marker files.
func startWorkerProcess(t *testing.T, url, id, dir string, hold bool) *helperWorker {
	t.Helper()
	mode := "ok"
	if hold {
		mode = "hold"
	}
	h := &helperWorker{done: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^$")
	h.cmd.Env = append(os.Environ(), "AVTO_HELPER_WORKER="+id, "ORCHESTRATOR_URL="+url,
		"AVTO_HELPER_WORKER_MODE="+mode, "AVTO_HELPER_WORKER_DIR="+dir)
	h.cmd.Stdout, h.cmd.Stderr = h, h
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.pid = strconv.Itoa(h.cmd.Process.Pid)
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			h.mu.Lock()
			t.Logf("--- worker %s (pid %s, %s) ---\n%s", id, h.pid, mode, h.out)
			h.mu.Unlock()
		}
	})
	return h
}

// kill ends the process with SIGKILL: no offline heartbeat, no result.
func (h *helperWorker) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

// waitStarted waits until the process's handler has taken a task.
func (h *helperWorker) waitStarted(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, h.pid+".started")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-h.done:
			t.Fatalf("worker process %s exited before it took the task", h.pid)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker process %s took no task within 60 s", h.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deathBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("death").Endpoint("v1", "/jobs/death")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work"})
	}, blueprint.On("success", "finished"))
	bp.End("finished", nil)
	return bp
}

// serveDeath serves the death blueprint with workerTTL, on the in-memory
// store, and returns its URL and a client.
func serveDeath(t *testing.T, workerTTL time.Duration) (string, *client.Client) {
	t.Helper()
	_, url := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", Clients: []orchestrator.Client{{Name: "c", Token: "ct"}},
		PollTimeout: time.Second, WorkerTTL: workerTTL, HistoryURI: "none",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
	}, deathBlueprint())
	c, err := client.New(url, "ct")
	if err != nil {
		t.Fatal(err)
	}
	return url, c
}

// finishedBy waits (60 s at most) for the job to end and returns the pid
// of the worker process whose result finished it.
func finishedBy(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := c.Wait(ctx, id, client.PollEvery(100*time.Millisecond))
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	if j.Status != protocol.StatusFinished {
		t.Fatalf("job %s ended %s: %s", id, j.Status, j.ErrorMessage)
	}
	by, _ := j.StateHistory["done_by"].(string)
	return by
}

// A worker process killed with SIGKILL mid-task and started again under the
// same id runs the task again once it registers: the orchestrator sees a
// new run of the worker (another session) and retries the task it held.
// The TTL is a minute, so the retry cannot come from the worker's silence.
func TestWorkerProcessKilledAndRestartedGetsItsTaskAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	dir := t.TempDir()
	url, c := serveDeath(t, time.Minute)
	first := startWorkerProcess(t, url, "phoenix", dir, true)
	id, err := c.CreateJob(context.Background(), "/jobs/death", nil)
	if err != nil {
		t.Fatal(err)
	}
	first.waitStarted(t, dir)
	first.kill()
	restarted := time.Now()
	second := startWorkerProcess(t, url, "phoenix", dir, false)
	if by := finishedBy(t, c, id); by != second.pid {
		t.Fatalf("the job was finished by process %q, want the restarted worker %s (the killed one was %s)", by, second.pid, first.pid)
	}
	// Far from the TTL (a minute) and the execution timeout (5 min), the
	// bounds a lost task would otherwise wait for.
	d := time.Since(restarted)
	if d > 30*time.Second {
		t.Fatalf("the task ran again %s after the restart", d)
	}
	t.Logf("the job finished %s after the restart (the process's start and registration included)", d.Round(time.Millisecond))
}

// A worker process killed with SIGKILL mid-task and not started again:
// once its heartbeats have been missing for the TTL, its task goes to
// another worker, which finishes the job.
func TestWorkerProcessKilledTaskGoesToAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	dir := t.TempDir()
	const ttl = 2 * time.Second
	url, c := serveDeath(t, ttl)
	doomed := startWorkerProcess(t, url, "doomed", dir, true)
	id, err := c.CreateJob(context.Background(), "/jobs/death", nil)
	if err != nil {
		t.Fatal(err)
	}
	doomed.waitStarted(t, dir)
	other := startWorkerProcess(t, url, "survivor", dir, false)
	doomed.kill()
	killed := time.Now()
	if by := finishedBy(t, c, id); by != other.pid {
		t.Fatalf("the job was finished by process %q, want the other worker %s (the killed one was %s)", by, other.pid, doomed.pid)
	}
	t.Logf("the job finished %s after the kill (TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
	// The killed worker is gone from the list; the other one serves.
	ws, err := c.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.WorkerID == "doomed" && w.Status != "offline" {
			t.Errorf("the killed worker is listed as %q", w.Status)
		}
	}
}
