// Package orchestrator is the Avtomatika server as a Go library: register
// blueprints, start it, and create and follow jobs from Go code or over the
// HTTP API that Handler serves.
//
//	o, err := orchestrator.New(orchestrator.Config{})
//	if err != nil { ... }
//	if err := o.Register(myBlueprint); err != nil { ... }
//	if err := o.Start(); err != nil { ... }
//	defer o.Stop(context.Background())
//	job, err := o.CreateJob(ctx, "my_blueprint", map[string]any{"path": "/in.mp4"})
package orchestrator

import (
	"context"
	"log/slog"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// Job is a job's live record.
type Job = store.Job

// Config configures an Orchestrator. The zero value runs on the in-memory
// store with the documented defaults.
type Config struct {
	// Store holds live state; nil means an in-memory store.
	Store  store.Store
	Logger *slog.Logger

	Executors       int           // concurrent job steps (64)
	MaxTransitions  int           // transitions before a job counts as looping (100)
	MaxRetries      int           // retries of a failing task or handler (3)
	RetryBackoff    time.Duration // first retry delay, doubling, with jitter (1s)
	RetryBackoffMax time.Duration // longest retry delay (30s)
	TaskTimeout     time.Duration // default execution timeout of a task (5m)
	DispatchTimeout time.Duration // default wait for a worker before a task fails (none)
	PollTimeout     time.Duration // longest worker long poll (30s)
	WorkerTTL       time.Duration // heartbeat silence after which a worker is offline (60s)
	PriorityAging   time.Duration // queueing time worth one unit of task priority (60s)
	MinReputation   float64       // workers below it get no tasks (0.3)
}

// Orchestrator runs blueprints.
type Orchestrator struct {
	cfg Config
	eng *engine.Engine
}

// New returns an orchestrator. Register blueprints, then Start it.
func New(cfg Config) (*Orchestrator, error) {
	if cfg.Store == nil {
		cfg.Store = memory.New(memory.Options{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	eng, err := engine.New(engine.Config{
		Store: cfg.Store, Logger: cfg.Logger, Executors: cfg.Executors, MaxTransitions: cfg.MaxTransitions,
		MaxRetries: cfg.MaxRetries, RetryBackoff: cfg.RetryBackoff, RetryBackoffMax: cfg.RetryBackoffMax,
		TaskTimeout: cfg.TaskTimeout, DispatchTimeout: cfg.DispatchTimeout, PollTimeout: cfg.PollTimeout,
		WorkerTTL: cfg.WorkerTTL, PriorityAging: cfg.PriorityAging,
		Dispatch: engineDispatch(cfg),
	})
	if err != nil {
		return nil, err
	}
	return &Orchestrator{cfg: cfg, eng: eng}, nil
}

// Register validates and adds blueprints.
func (o *Orchestrator) Register(bps ...*blueprint.Blueprint) error {
	for _, bp := range bps {
		if err := o.eng.Register(bp); err != nil {
			return err
		}
	}
	return nil
}

// Start starts running jobs.
func (o *Orchestrator) Start() error { return o.eng.Start() }

// Stop stops taking work and waits, until ctx ends, for steps in progress.
func (o *Orchestrator) Stop(ctx context.Context) error { return o.eng.Stop(ctx) }

// JobOption sets optional fields of a new job.
type JobOption func(*engine.NewJob)

// WithClient sets the job's owner.
func WithClient(c blueprint.Client) JobOption { return func(n *engine.NewJob) { n.Client = c } }

// WithWebhook sets the URL notified when the job ends.
func WithWebhook(url string) JobOption { return func(n *engine.NewJob) { n.WebhookURL = url } }

// CreateJob starts a job of the named blueprint.
func (o *Orchestrator) CreateJob(ctx context.Context, blueprintName string, initialData map[string]any, opts ...JobOption) (*Job, error) {
	req := engine.NewJob{Blueprint: blueprintName, InitialData: initialData, Client: blueprint.Client{Name: "internal"}}
	for _, opt := range opts {
		opt(&req)
	}
	return o.eng.CreateJob(ctx, req)
}

// Job returns a job's current record.
func (o *Orchestrator) Job(ctx context.Context, id string) (*Job, error) { return o.eng.GetJob(ctx, id) }

// CancelJob cancels a job that has not ended.
func (o *Orchestrator) CancelJob(ctx context.Context, id string) error {
	_, err := o.eng.CancelJob(ctx, id, "cancelled")
	return err
}

// Approve delivers a human decision to a job waiting for one.
func (o *Orchestrator) Approve(ctx context.Context, id, decision string) error {
	_, err := o.eng.Approve(ctx, id, decision)
	return err
}
