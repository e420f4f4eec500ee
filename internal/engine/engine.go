// Package engine runs jobs: it executes blueprint handlers, carries out their
// actions, hands tasks to workers, applies results, and fires timers. It
// talks to the outside only through store.Store and the Engine's methods, so
// the HTTP layer, tests and embedding programs all drive it the same way.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch"
	"github.com/avtomatika-ai/avtomatika-go/internal/offload"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Config configures an Engine. Zero fields take the defaults documented on
// each field.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// OnEvent observes everything that happens to jobs and workers, in
	// this process. It is called after the change is committed and must not
	// block; durable consumers read the outbox instead.
	OnEvent func(Event)
	// EncodeEvent turns an event into the bytes the store's outbox keeps,
	// committed with the write that produced it. withJob asks for the job
	// snapshot (ev.Job) to be included. Nil keeps no outbox; an encoder
	// that returns nil bytes keeps no such event (no consumer wants it).
	EncodeEvent func(ev Event, withJob bool) ([]byte, error)

	Executors       int           // concurrent job steps (64)
	StepLease       time.Duration // lease on a job step, renewed while it runs (30s)
	MaxTransitions  int           // transitions before a job is declared looping (100)
	MaxFanOut       int           // parallel tasks one DispatchParallel may start (10000)
	MaxRetries      int           // retries of a failing task or handler (3)
	RetryBackoff    time.Duration // first retry delay, doubled each time, with jitter (1s)
	RetryBackoffMax time.Duration // longest retry delay (30s)
	TaskTimeout     time.Duration // default execution timeout after pickup (5m)
	DispatchTimeout time.Duration // default queue wait before a task fails (0: none)
	PollTimeout     time.Duration // longest worker long poll (30s)
	WorkerTTL       time.Duration // a worker missing heartbeats this long is offline (20s: two of the SDK's heartbeats)
	// LostTaskGrace is how long after its pickup a task must be listed in
	// its worker's heartbeats; one missing after that was lost and is
	// retried at once (10s).
	LostTaskGrace time.Duration
	PriorityAging time.Duration // queueing time worth one priority unit (60s)
	TimerInterval time.Duration // longest sleep of the timer loop (1s)
	// StealAfter is how long a task queued for a worker may wait before an
	// idle worker that meets its requirements takes it over; tasks of a
	// worker that is busy, full or gone can be taken at once (10s).
	StealAfter time.Duration
	Dispatch   dispatch.Policy
	Reputation ReputationPolicy

	// Tracer records spans for job creation, steps and dispatches (no-op
	// when nil).
	Tracer trace.Tracer

	// Webhooks delivers job notifications; nil disables webhooks.
	Webhooks        Notifier
	WebhookAttempts int           // most attempts per notification (200)
	WebhookBackoff  time.Duration // delay before the second attempt, doubling (2s)
	// WebhookBackoffMax caps the delay between attempts (10m), and
	// WebhookWindow is how long after the job ended attempts go on (24h):
	// a receiver that is down for hours still gets the notification.
	WebhookBackoffMax time.Duration
	WebhookWindow     time.Duration
	// ApprovalTokenTTL is how long a pending approval's single-use token
	// (an approval URL that needs no client token) stays valid (7 days).
	ApprovalTokenTTL time.Duration
	// PublicURL is the orchestrator's address as clients reach it, for the
	// approval URL a job_waiting_for_human webhook carries ("" gives a path).
	PublicURL       string
	WebhookParallel int // deliveries in flight at once (16)

	// Blobs stores large task params and results, and the files of jobs;
	// nil disables offloading.
	Blobs blob.Store
	// OffloadThreshold is the JSON size in bytes of a task's params (or a
	// result's data) above which its largest values are stored in Blobs
	// and passed by reference (1 MiB; negative: never).
	OffloadThreshold int64
	// BlobCleanupAfter is how long after a job ended its objects in Blobs
	// are deleted (0: never).
	BlobCleanupAfter time.Duration

	// RecentJobs is how many unfinished jobs the engine keeps a copy of
	// after writing them, so that their next write here needs no store
	// read (4096, and 32 part records per job in all; negative: none). A copy
	// another process made stale costs one refused write and a read. Each
	// copy holds the job's input data: lower it where inputs are large.
	RecentJobs int
}

// Notifier sends one webhook attempt; see internal/webhook.
type Notifier interface {
	Deliver(ctx context.Context, url string, p protocol.WebhookPayload) (status int, retry bool, err error)
}

// ReputationPolicy sets how results move a worker's reputation, a number in
// [0, 1] that starts at 1.
type ReputationPolicy struct {
	Reward           float64 // per successful task (0.01)
	FailurePenalty   float64 // per transient failure the worker reports, per timeout, per task lost when it went offline (0.05)
	PermanentPenalty float64 // per permanent failure (0.1)
	SeverePenalty    float64 // per security error or contract violation (0.3)
	// Failures the worker blames on the task's input (INVALID_INPUT_ERROR)
	// cost nothing: a client's bad data says nothing of the worker.

	// ClientPenaltyCap is the most reputation the tasks of one client may
	// take from one worker in an hour, so that no client can bench a worker
	// alone, by bad luck or on purpose (0.35: from 1, not below 0.65).
	ClientPenaltyCap float64
	// RecoveryPerHour is given back to every live worker below 1 each hour,
	// so that a worker under the dispatch floor can earn tasks again (0.1).
	RecoveryPerHour float64
	// RecoveryInterval is how often recovery is applied (1m).
	RecoveryInterval time.Duration
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("engine: a store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OnEvent == nil {
		c.OnEvent = func(Event) {}
	}
	if c.Tracer == nil {
		c.Tracer = tracenoop.NewTracerProvider().Tracer("")
	}
	setDefault(&c.Executors, 64)
	setDefault(&c.StepLease, 30*time.Second)
	setDefault(&c.MaxTransitions, 100)
	setDefault(&c.MaxFanOut, 10000)
	setDefault(&c.RecentJobs, 4096)
	setDefault(&c.MaxRetries, 3)
	setDefault(&c.RetryBackoff, time.Second)
	setDefault(&c.RetryBackoffMax, 30*time.Second)
	setDefault(&c.TaskTimeout, 5*time.Minute)
	setDefault(&c.PollTimeout, 30*time.Second)
	setDefault(&c.WorkerTTL, 20*time.Second)
	setDefault(&c.LostTaskGrace, 10*time.Second)
	setDefault(&c.PriorityAging, 60*time.Second)
	setDefault(&c.TimerInterval, time.Second)
	setDefault(&c.Dispatch.MinReputation, 0.3)
	setDefault(&c.Dispatch.SoftLimit, 3)
	setDefault(&c.Reputation.Reward, 0.01)
	setDefault(&c.Reputation.FailurePenalty, 0.05)
	setDefault(&c.Reputation.PermanentPenalty, 0.1)
	setDefault(&c.Reputation.SeverePenalty, 0.3)
	setDefault(&c.Reputation.ClientPenaltyCap, 0.35)
	setDefault(&c.Reputation.RecoveryPerHour, 0.1)
	setDefault(&c.Reputation.RecoveryInterval, time.Minute)
	setDefault(&c.StealAfter, 10*time.Second)
	setDefault(&c.WebhookAttempts, 200)
	setDefault(&c.WebhookBackoff, 2*time.Second)
	setDefault(&c.WebhookBackoffMax, 10*time.Minute)
	setDefault(&c.WebhookWindow, 24*time.Hour)
	setDefault(&c.ApprovalTokenTTL, 7*24*time.Hour)
	setDefault(&c.WebhookParallel, 16)
	setDefault(&c.OffloadThreshold, offload.DefaultThreshold)
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	return nil
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Engine runs jobs of registered blueprints.
type Engine struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
	hub   *hub

	mu         sync.RWMutex
	blueprints map[string]*blueprint.Blueprint
	started    bool

	ctx    context.Context // lives from Start to Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	poke   chan struct{} // wakes the timer loop
	// sleepUntil is when the sleeping timer loop wakes by itself (unix
	// ns); 0 while it is awake. Timers due later need no poke.
	sleepUntil atomic.Int64
	hooks      chan struct{} // bounds background timer work in flight (webhooks, blob clean-up)
	locks      jobLocks      // this process's writers, one job at a time
	recent     *recentJobs   // copies of the jobs written last, see mutateParts
	pollers    pollers       // records of the workers polling this process
	placed     placed        // tasks this process queued for workers, see pickupPlaced
	batches    batches       // writes of one task waiting for their job's write, see mutateTask
	roster     roster        // the live workers, for dispatch decisions
	asking     asking        // results that will ask for their worker's next task, see AskingFor
	// stealIdleUntil pauses steal scans while one runs and after one found
	// nothing (unix ns).
	stealIdleUntil atomic.Int64
	pollHold       time.Duration // maxPollHold; set by tests
}

// New returns an engine; register blueprints, then Start it.
func New(cfg Config) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Engine{
		cfg:        cfg,
		store:      cfg.Store,
		log:        cfg.Logger,
		hub:        newHub(),
		blueprints: map[string]*blueprint.Blueprint{},
		poke:       make(chan struct{}, 1),
		hooks:      make(chan struct{}, cfg.WebhookParallel),
		recent:     newRecentJobs(cfg.RecentJobs),
		pollHold:   maxPollHold,
	}, nil
}

// Config returns the effective configuration (defaults filled in).
func (e *Engine) Config() Config { return e.cfg }

// Store returns the engine's store.
func (e *Engine) Store() store.Store { return e.store }

// Register validates a blueprint and adds it. Blueprints must be registered
// before Start.
func (e *Engine) Register(bp *blueprint.Blueprint) error {
	if err := bp.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return fmt.Errorf("blueprint %q: register blueprints before Start", bp.Name())
	}
	if _, dup := e.blueprints[bp.Name()]; dup {
		return fmt.Errorf("blueprint %q is already registered", bp.Name())
	}
	if v, p := bp.API(); p != "" {
		for _, other := range e.blueprints {
			if ov, op := other.API(); ov == v && op == p {
				return fmt.Errorf("blueprint %q: endpoint %s %s is already used by blueprint %q", bp.Name(), v, p, other.Name())
			}
		}
	}
	e.blueprints[bp.Name()] = bp
	return nil
}

// Blueprint returns a registered blueprint.
func (e *Engine) Blueprint(name string) (*blueprint.Blueprint, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	bp, ok := e.blueprints[name]
	return bp, ok
}

// Blueprints returns every registered blueprint.
func (e *Engine) Blueprints() []*blueprint.Blueprint {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*blueprint.Blueprint, 0, len(e.blueprints))
	for _, bp := range e.blueprints {
		out = append(out, bp)
	}
	return out
}

// Start checks cross-blueprint references and starts the executors, the
// timer loop and the queue watcher. They run until Stop.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("engine already started")
	}
	var errs []error
	for _, bp := range e.blueprints {
		for _, child := range bp.Children() {
			if _, ok := e.blueprints[child]; !ok {
				errs = append(errs, fmt.Errorf("blueprint %q runs child blueprint %q, which is not registered", bp.Name(), child))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	queueEvents, err := e.store.WatchQueues(e.ctx)
	if err != nil {
		e.cancel()
		return fmt.Errorf("watch task queues: %w", err)
	}
	e.started = true
	e.spawn(func() { e.hub.run(e.ctx, queueEvents) })
	e.spawn(e.timerLoop)
	for range e.cfg.Executors {
		e.spawn(e.executorLoop)
	}
	return nil
}

func (e *Engine) spawn(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

// Stop stops taking new work, waits (until ctx ends) for job steps in
// progress, releases long polls and stops every background loop. Work left
// in the store is picked up by the next engine on the same store.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.started {
		e.mu.Unlock()
		return nil
	}
	e.started = false
	e.mu.Unlock()
	e.cancel()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engine stop: %w", ctx.Err())
	}
}

// Done is closed when the engine stops; long polls end with it.
func (e *Engine) done() <-chan struct{} {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ctx == nil {
		return nil
	}
	return e.ctx.Done()
}

func (e *Engine) now() time.Time { return time.Now().UTC() }

// wakeTimers makes the timer loop look for due timers now, unless it
// wakes by itself before at anyway.
func (e *Engine) wakeTimers(at time.Time) {
	if until := e.sleepUntil.Load(); until != 0 && at.UnixNano() >= until {
		return
	}
	select {
	case e.poke <- struct{}{}:
	default:
	}
}
