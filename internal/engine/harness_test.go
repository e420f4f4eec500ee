package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// env is an engine on a memory store with fast timings, plus fake workers
// driven through the engine API.
type env struct {
	t     testing.TB
	e     *Engine
	store store.Store
	ctx   context.Context

	mu     sync.Mutex
	events []Event
}

// inBubble runs a test in a synctest bubble, where the engine's timers,
// retries and backoffs and the test's own waits pass on the bubble's
// clock: a timeout of seconds takes no real time.
func inBubble(f func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { synctest.Test(t, f) }
}

func newEnv(t testing.TB, cfg Config, bps ...*blueprint.Blueprint) *env {
	t.Helper()
	en := &env{t: t}
	if cfg.Store == nil {
		cfg.Store = memory.New(memory.Options{})
	}
	setDefault(&cfg.RetryBackoff, 10*time.Millisecond)
	setDefault(&cfg.RetryBackoffMax, 40*time.Millisecond)
	setDefault(&cfg.TimerInterval, 20*time.Millisecond)
	setDefault(&cfg.PollTimeout, 300*time.Millisecond)
	setDefault(&cfg.Executors, 8)
	cfg.OnEvent = en.record
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, bp := range bps {
		if err := e.Register(bp); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		stopCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := e.Stop(stopCtx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	en.e, en.store, en.ctx = e, cfg.Store, ctx
	return en
}

func (en *env) record(ev Event) {
	en.mu.Lock()
	defer en.mu.Unlock()
	en.events = append(en.events, ev)
}

func (en *env) eventsOf(typ EventType) []Event {
	en.mu.Lock()
	defer en.mu.Unlock()
	var out []Event
	for _, ev := range en.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (en *env) create(bp string, data map[string]any) *store.Job {
	en.t.Helper()
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: bp, InitialData: data, Client: blueprint.Client{Name: "tester"}})
	if err != nil {
		en.t.Fatal(err)
	}
	return j
}

// wait polls a job until cond holds.
func (en *env) wait(id string, what string, cond func(*store.Job) bool) *store.Job {
	en.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := en.e.GetJob(en.ctx, id)
		if err == nil && cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			en.t.Fatalf("job %s never became %s; last: %+v (err %v)", id, what, summary(j), err)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func (en *env) waitStatus(id string, want protocol.JobStatus) *store.Job {
	en.t.Helper()
	return en.wait(id, string(want), func(j *store.Job) bool { return j.Status == want })
}

func (en *env) waitEnd(id string) *store.Job {
	en.t.Helper()
	return en.wait(id, "terminal", func(j *store.Job) bool { return j.Status.Terminal() })
}

func summary(j *store.Job) string {
	if j == nil {
		return "<nil>"
	}
	return fmt.Sprintf("status=%s state=%s error=%q progress=%q tasks=%d", j.Status, j.CurrentState, j.ErrorMessage, j.ProgressMessage, len(j.Tasks))
}

// fakeWorker answers tasks through the engine API.
type fakeWorker struct {
	id     string
	skills map[string]float64 // skill → price
	props  map[string]any     // resources.properties
	gpuGB  float64            // adds a GPU device
	// outputs are the result statuses it declares for every skill (none:
	// it does not say).
	outputs []string
	extra   map[string]any
	handle  func(p *protocol.TaskPayload) protocol.TaskResult

	runs atomic.Int64
	mu   sync.Mutex
	seen []string // task ids, in order
}

func ok(data map[string]any) func(*protocol.TaskPayload) protocol.TaskResult {
	return func(*protocol.TaskPayload) protocol.TaskResult {
		return protocol.TaskResult{Status: protocol.TaskSuccess, Data: data}
	}
}

func fail(code, msg string) func(*protocol.TaskPayload) protocol.TaskResult {
	return func(*protocol.TaskPayload) protocol.TaskResult {
		return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: code, Message: msg}}
	}
}

func (en *env) register(w *fakeWorker) {
	en.t.Helper()
	reg := protocol.Registration{WorkerID: w.id, WorkerType: "fake", Capabilities: &protocol.Capabilities{CostPerSkill: map[string]float64{}, Extra: w.extra}}
	for skill, price := range w.skills {
		reg.SupportedSkills = append(reg.SupportedSkills, protocol.SkillInfo{Name: skill, OutputStatus: w.outputs})
		reg.Capabilities.CostPerSkill[skill] = price
	}
	reg.Resources = &protocol.Resources{Properties: w.props}
	if w.gpuGB > 0 {
		reg.Resources.Devices = []protocol.HardwareDevice{{Type: "gpu", Model: "NVIDIA T4", Properties: map[string]any{"memory_gb": w.gpuGB}}}
	}
	if _, err := en.e.RegisterWorker(en.ctx, reg); err != nil {
		en.t.Fatal(err)
	}
}

// waitReputation waits for a worker's reputation to be want (within 1e-9),
// as a result's reputation change lands just after the result is applied,
// and checks that it stays there a moment (no second penalty follows).
func (en *env) waitReputation(workerID string, want float64) {
	en.t.Helper()
	read := func() (float64, error) {
		reps, err := en.store.Reputations(en.ctx, workerID)
		if got, known := reps[workerID]; known {
			return got, err
		}
		return 1, err // every worker starts at 1
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := read()
		if err == nil && math.Abs(got-want) < 1e-9 {
			break
		}
		if time.Now().After(deadline) {
			en.t.Fatalf("reputation of %s is %v, want %v (err %v)", workerID, got, want, err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got, err := read(); err != nil || math.Abs(got-want) >= 1e-9 {
		en.t.Fatalf("reputation of %s moved on from %v to %v (err %v)", workerID, want, got, err)
	}
}

// succeed has worker id take a task (of the attempt given, when not 0) and
// report its success; it returns the task.
func (en *env) succeed(id string, attempt int) *protocol.TaskPayload {
	en.t.Helper()
	p, err := en.e.NextTask(en.ctx, id, 2*time.Second)
	if err != nil || p == nil || attempt != 0 && p.Attempt != attempt {
		en.t.Fatalf("poll of %s: %+v %v", id, p, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, id, protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskSuccess}); err != nil {
		en.t.Fatalf("result of %s: %v", id, err)
	}
	return p
}

// heartbeat sends a full heartbeat with a status.
func (en *env) heartbeat(workerID, status string) {
	en.t.Helper()
	if _, err := en.e.Heartbeat(en.ctx, workerID, &protocol.Heartbeat{WorkerID: workerID, Status: status}); err != nil {
		en.t.Fatalf("heartbeat of %s: %v", workerID, err)
	}
}

// start registers w and runs its poll loop until the test ends.
func (en *env) start(w *fakeWorker) *fakeWorker {
	en.t.Helper()
	en.register(w)
	go func() {
		for en.ctx.Err() == nil {
			p, err := en.e.NextTask(en.ctx, w.id, 200*time.Millisecond)
			if err != nil {
				time.Sleep(10 * time.Millisecond) // unregistered: do not spin
				continue
			}
			if p == nil {
				continue
			}
			w.runs.Add(1)
			w.mu.Lock()
			w.seen = append(w.seen, p.TaskID)
			w.mu.Unlock()
			res := w.handle(p)
			res.JobID, res.TaskID = p.JobID, p.TaskID
			if _, err := en.e.SubmitResult(en.ctx, w.id, res); err != nil && en.ctx.Err() == nil {
				en.t.Errorf("submit result: %v", err)
			}
		}
	}()
	return w
}
