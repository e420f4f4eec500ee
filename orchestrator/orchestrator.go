// Package orchestrator is the Avtomatika server as a Go library: register
// blueprints, start it, serve the HTTP API (client API, RXON worker
// protocol, docs), and create and follow jobs from Go code.
//
//	o, err := orchestrator.New(orchestrator.Config{Addr: ":8080", ClientsFile: "clients.toml"})
//	if err != nil { ... }
//	if err := o.Register(myBlueprint); err != nil { ... }
//	err = o.ListenAndServe(ctx) // until ctx ends, then a graceful shutdown
//
// On its own the package runs on the embedded defaults: the in-memory live
// store, a local blob folder, no history database. Redis, SQLite and
// PostgreSQL history and S3 are linked by importing their packages under
// orchestrator/backends for their side effect:
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/internal/console"
	"github.com/avtomatika-ai/avtomatika-go/internal/dispatch"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/internal/figures"
	"github.com/avtomatika-ai/avtomatika-go/internal/outbox"
	"github.com/avtomatika-ai/avtomatika-go/internal/scheduler"
	"github.com/avtomatika-ai/avtomatika-go/internal/telemetry"
	"github.com/avtomatika-ai/avtomatika-go/internal/tracing"
	"github.com/avtomatika-ai/avtomatika-go/internal/webhook"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// Job is a job's live record.
type Job = store.Job

// Client is an API client allowed to create jobs.
type Client struct {
	Name            string
	Token           string
	Plan            string
	Params          map[string]any
	MonthlyAttempts int64 // job creations per calendar month (UTC); 0 = unlimited
	RateLimit       int   // requests per RatePeriod; 0 = RateLimit of the Config
}

// Config configures an Orchestrator. The zero value runs on the in-memory
// store with the documented defaults; ConfigFromEnv reads the environment.
type Config struct {
	// Store holds live state. Nil means Redis when RedisURL is set, else
	// an in-memory store.
	//
	// Redis, SQLite and PostgreSQL history and S3 blob storage are linked
	// only into programs that import their packages under
	// orchestrator/backends (see there); a Config that names one that is
	// not linked is an error naming the import to add.
	Store  store.Store
	Logger *slog.Logger

	// RedisURL (REDIS_URL) selects the Redis backend: redis://[[user]:password@]host[:port][/db]
	// or rediss:// for TLS. Several orchestrators on one Redis share the work.
	// Needs orchestrator/backends/redis.
	RedisURL string
	// RedisCluster (REDIS_CLUSTER) makes RedisURL name a Redis Cluster:
	// redis://host1:7000?addr=host2:7001&addr=host3:7002 lists seed nodes.
	RedisCluster bool
	// RedisShards (REDIS_SHARDS) spreads the live state over this many
	// shards (hash tags), so that a Cluster's masters share a deployment
	// (a multiple of the masters: 12 for 3); 1 (the default) keeps it in
	// one slot. Every orchestrator of a
	// deployment must use the same number.
	RedisShards   int
	RedisPrefix   string        // key prefix, so that deployments share a Redis ("avto")
	RedisPoolSize int           // connection pool size (go-redis default)
	JobRetention  time.Duration // how long ended jobs stay in the live store (24h); history keeps them

	Executors      int           // concurrent job steps (64)
	StepLease      time.Duration // lease on a job step; a crashed orchestrator's steps resume after it (30s)
	MaxTransitions int           // transitions before a job counts as looping (100)
	MaxFanOut      int           // parallel tasks one DispatchParallel may start (10000)
	// RecentJobs is how many unfinished jobs this orchestrator keeps a
	// copy of after writing them, to write them next without a read (see
	// engine.Config.RecentJobs; 4096, negative: none).
	RecentJobs      int
	MaxRetries      int           // retries of a failing task or handler (3; -1 for none)
	RetryBackoff    time.Duration // first retry delay, doubling, with jitter (1s)
	RetryBackoffMax time.Duration // longest retry delay (30s)
	TaskTimeout     time.Duration // default execution timeout of a task (5m)
	DispatchTimeout time.Duration // default wait for a worker before a task fails (none)
	PollTimeout     time.Duration // longest worker long poll (30s)
	WorkerTTL       time.Duration // heartbeat silence after which a worker is offline (20s)
	PriorityAging   time.Duration // queueing time worth one unit of task priority (60s)
	MinReputation   float64       // workers below it get no tasks (0.3)
	// ReputationRecoveryPerHour is what every live worker below full
	// reputation regains per hour (0.1).
	ReputationRecoveryPerHour float64
	// ReputationClientCap is the most reputation one client's jobs may take
	// from one worker per hour (0.35).
	ReputationClientCap float64

	// HTTP server.
	Addr              string            // listen address (":8080")
	ClientsFile       string            // clients.toml; reloadable
	Clients           []Client          // clients besides those of ClientsFile
	WorkersFile       string            // workers.toml (worker id or glob → token); reloadable
	WorkerTokens      map[string]string // individual worker tokens besides WorkersFile
	GlobalWorkerToken string            // accepted from any worker without an individual token; "" disables
	AdminToken        string            // guards POST /api/v1/admin/reload; "" disables it
	MaxBodyBytes      int64             // request body limit (10 MiB)
	RateLimit         int               // client requests per RatePeriod; 0 disables
	RatePeriod        time.Duration     // rate-limit window (1m)
	ShutdownTimeout   time.Duration     // graceful shutdown budget (30s)
	SchedulesFile     string            // schedules.toml; bad entries are logged and skipped
	WebhookSecret     string            // signs webhooks (X-Avtomatika-Signature); "" sends them unsigned
	// OrchestratorSecretKey signs every task handed out (HMAC-SHA256, the
	// payload's sig), so that workers holding the same key (RXON 1.0b17:
	// ORCHESTRATOR_SECRET_KEY in the Python SDK 1.0b20) know it came from
	// this orchestrator; "" sends tasks unsigned.
	OrchestratorSecretKey string
	WebhookTimeout        time.Duration // per attempt (10s)
	WebhookAttempts       int           // most attempts per notification (200)
	// WebhookRetryWindow is how long after a job ended its notification is
	// retried (24h), with delays doubling from 2s up to WebhookBackoffMax
	// (10m).
	WebhookRetryWindow time.Duration
	// ApprovalTokenTTL is how long the single-use URL of a pending approval
	// (approving without the client token) stays valid; 0 means 7 days.
	ApprovalTokenTTL  time.Duration
	WebhookBackoffMax time.Duration
	BuildVersion      string // shown in the API document

	// WebhookAllowedHosts (WEBHOOK_ALLOWED_HOSTS) exempt webhook receivers
	// from the egress policy, which refuses loopback, private, link-local
	// and other internal addresses: host names, IP addresses and CIDR
	// prefixes, e.g. "127.0.0.1/32", "receiver.internal". A bad entry
	// makes every delivery fail (ConfigFromEnv reports it at startup).
	WebhookAllowedHosts []string

	// MetricsWorkerLabels (METRICS_WORKER_LABELS) labels the worker
	// reputation and load gauges of /_public/metrics, which needs no token,
	// with worker ids, for at most MetricsWorkerLabelsMax workers
	// (METRICS_WORKER_LABELS_MAX, 100; the rest share worker="(other)").
	// Off, both gauges have the one series worker="(other)".
	MetricsWorkerLabels    bool
	MetricsWorkerLabelsMax int

	// OnEvent, when set, observes every job and worker event (after it is
	// committed). It must not block.
	OnEvent func(Event)

	// HistoryURI names the audit-trail database (HISTORY_DATABASE_URI):
	// "sqlite:PATH" (needs orchestrator/backends/sqlite), "postgres://..."
	// (needs orchestrator/backends/postgres), or "" / "none" for no history.
	HistoryURI string
	// History is an already open history store; it wins over HistoryURI.
	History history.Store

	// TracerProvider records spans for API requests, job creation, steps
	// and dispatches; nil records nothing. TracingFromEnv builds one from the
	// OTEL_* variables.
	TracerProvider trace.TracerProvider

	// Blob storage holds large task params and results (passed to workers
	// by s3:// reference) and the files clients upload and download.
	// Blobs is an open store; it wins over S3 and BlobDir, and the
	// orchestrator does not close it.
	Blobs blob.Store
	// S3 (S3_ENDPOINT_URL, S3_ACCESS_KEY, S3_SECRET_KEY, S3_DEFAULT_BUCKET,
	// S3_REGION, S3_FORCE_PATH_STYLE) is used when S3.Endpoint is set; the
	// bucket is created if missing. Needs orchestrator/backends/s3.
	S3 blob.S3Options
	// BlobDir (BLOB_DIR) is a local folder used when S3 is not configured;
	// its presigned URLs are served under /_public/blobs. "" disables blob
	// storage: the file routes answer 501 and nothing is offloaded.
	BlobDir string
	// BlobSigningKey (BLOB_SIGNING_KEY) signs the local folder's presigned
	// URLs; "" picks a random key per process (set it when several
	// orchestrators share the folder).
	BlobSigningKey string
	// OffloadThreshold (S3_OFFLOAD_THRESHOLD) is the JSON size of a task's
	// params or a result's data above which its largest values are stored
	// as objects (1 MiB; negative: never).
	OffloadThreshold int64
	// KeepBlobs (S3_AUTO_CLEANUP=false) keeps a job's objects; otherwise
	// they are deleted when its JobRetention ends.
	KeepBlobs bool
	// MaxUploadBytes (MAX_UPLOAD_BYTES) bounds a file upload through the
	// API or a local presigned URL (5 GiB).
	MaxUploadBytes int64
	// PublicURL (PUBLIC_URL) is the orchestrator's URL as clients see it,
	// for the API document, local presigned URLs and the approval URLs of
	// job_waiting_for_human webhooks ("": the request's
	// own scheme and host).
	PublicURL string

	// Connection limits of Serve and ListenAndServe, against clients that
	// hold connections open (bodies trickling in, idle connections).
	// RequestBodyTimeout (REQUEST_BODY_TIMEOUT) is the time a JSON request
	// body has to arrive in full, and the longest pause of a file upload;
	// past it the request gets 408 and its connection is closed (60s;
	// negative: none). Handler served by a server of your own applies 60s.
	RequestBodyTimeout time.Duration
	// MaxConnections (MAX_CONNECTIONS) bounds the open connections; at the
	// limit new ones wait in the listen backlog (10000; negative: none).
	MaxConnections int
	// MaxConnectionsPerIP (MAX_CONNECTIONS_PER_IP) bounds the open
	// connections of one source address; requests on a connection over it
	// get 429 and the connection is closed (1000; negative: none). Behind a
	// reverse proxy every connection comes from the proxy's address.
	MaxConnectionsPerIP int

	// How often the live store is checked, and after how long a live
	// store not seen in history is gone (10s, 6 intervals); tests shorten
	// them (export_test.go).
	liveCheckInterval, liveStaleAfter time.Duration
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer("github.com/avtomatika-ai/avtomatika-go/orchestrator")
}

// TracingFromEnv returns a tracer provider configured by the standard
// OpenTelemetry variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
// ...): spans go to that OTLP/HTTP endpoint, or nowhere, with no overhead,
// when it is unset. Call shutdown before exiting to flush.
func TracingFromEnv(ctx context.Context, defaultService string) (trace.TracerProvider, func(context.Context) error, error) {
	return tracing.Tracing(ctx, defaultService)
}

// Event is something that happened to a job or a worker.
type Event = engine.Event

// Orchestrator runs blueprints and serves them over HTTP.
type Orchestrator struct {
	cfg     Config
	eng     *engine.Engine
	metrics *telemetry.Metrics
	figures *figures.Recorder // the console's charts, in the store
	clients *auth.Clients
	workers *auth.WorkerTokens

	history  history.Store
	relay    *outbox.Relay // the outbox's consumers: history writer, WebSocket commands
	audience *audience     // whether a console listens anywhere (job events for consoles)
	ownStore bool          // the orchestrator opened the store and closes it
	blobs    *blobStorage

	mu        sync.Mutex
	started   bool
	api       atomic.Pointer[api.Server]
	console   atomic.Pointer[console.Console]
	scheduler *scheduler.Scheduler
	stopSched context.CancelFunc
	schedDone chan struct{}
	stopRelay context.CancelFunc
	relayDone chan struct{}
	seenStore atomic.Value // the live store id last recorded in history
}

// New returns an orchestrator. Register blueprints, then Start it (or call
// ListenAndServe, which starts it).
func New(cfg Config) (*Orchestrator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.linked(); err != nil {
		return nil, err
	}
	ownStore := false
	switch {
	case cfg.Store != nil:
	case cfg.RedisURL != "":
		b, err := backend.Lookup(backend.Redis)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := b.OpenStore(ctx, backend.StoreOptions{URL: cfg.RedisURL, Cluster: cfg.RedisCluster, Shards: cfg.RedisShards, Prefix: cfg.RedisPrefix, PoolSize: cfg.RedisPoolSize, Retention: cfg.JobRetention, Logger: cfg.Logger})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("open Redis: %w", err)
		}
		cfg.Store, ownStore = st, true
	default:
		cfg.Store, ownStore = memory.New(memory.Options{Retention: cfg.JobRetention}), true
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 5 << 30
	}
	o := &Orchestrator{cfg: cfg, workers: auth.NewWorkerTokens(nil, ""), metrics: telemetry.New(cfg.Store, telemetry.Options{WorkerLabels: cfg.MetricsWorkerLabels, MaxWorkerLabels: cfg.MetricsWorkerLabelsMax}), history: cfg.History, ownStore: ownStore,
		figures: figures.New(cfg.Store, cfg.Logger)}
	if o.history == nil {
		hs, err := openHistory(cfg.HistoryURI)
		if err != nil {
			return nil, err
		}
		o.history = hs
	}
	if _, off := o.history.(history.Nop); off {
		// A disabled history ("none") is no history at all: no recorder,
		// and the API lists jobs from the live store.
		o.history = nil
	}
	o.relay = outbox.New(cfg.Store, outbox.Options{Logger: cfg.Logger})
	if o.history != nil {
		o.relay.Shared(historyConsumer, o.writeHistory)
	}
	o.relay.Local("commands", o.pushCommands)
	o.relay.Local("console", o.notifyConsole)
	o.audience = newAudience(cfg.Store, func() bool {
		c := o.console.Load()
		return c != nil && c.Listening()
	})
	var err error
	if o.blobs, err = openBlobs(cfg); err != nil {
		return nil, err
	}
	if ls, ok := o.blobs.store.(*local.Store); ok {
		ls.SpendWith(cfg.Store.SetOnce) // upload URLs are single-use across orchestrators
	}
	if o.clients, err = auth.NewClients(nil, nil); err != nil {
		return nil, err
	}
	if _, _, err := o.reload(); err != nil {
		return nil, err
	}
	o.eng, err = engine.New(engine.Config{
		Store: o.metrics.WrapStore(cfg.Store), Logger: cfg.Logger, OnEvent: o.onEvent, EncodeEvent: o.encodeEvent, Tracer: tracerOf(cfg.TracerProvider), Executors: cfg.Executors, StepLease: cfg.StepLease,
		MaxTransitions: cfg.MaxTransitions, MaxFanOut: cfg.MaxFanOut, RecentJobs: cfg.RecentJobs, MaxRetries: cfg.MaxRetries, RetryBackoff: cfg.RetryBackoff,
		RetryBackoffMax: cfg.RetryBackoffMax, TaskTimeout: cfg.TaskTimeout, DispatchTimeout: cfg.DispatchTimeout,
		PollTimeout: cfg.PollTimeout, WorkerTTL: cfg.WorkerTTL, PriorityAging: cfg.PriorityAging,
		Dispatch:   dispatch.Policy{MinReputation: cfg.MinReputation},
		Reputation: engine.ReputationPolicy{RecoveryPerHour: cfg.ReputationRecoveryPerHour, ClientPenaltyCap: cfg.ReputationClientCap},
		Webhooks:   webhook.New(webhook.Options{Secret: cfg.WebhookSecret, Timeout: cfg.WebhookTimeout, AllowedHosts: cfg.WebhookAllowedHosts}), WebhookAttempts: cfg.WebhookAttempts,
		WebhookWindow: cfg.WebhookRetryWindow, WebhookBackoffMax: cfg.WebhookBackoffMax, ApprovalTokenTTL: cfg.ApprovalTokenTTL, PublicURL: cfg.PublicURL,
		Blobs: o.blobs.store, OffloadThreshold: cfg.OffloadThreshold, BlobCleanupAfter: o.blobs.cleanupAfter,
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// encodeEvent encodes outbox events (the audit trail) with secrets in URLs
// redacted: a webhook attempt's URL as the API would show it. Events no
// consumer reads are not kept (nil), so no write pays for them (keepEvent).
func (o *Orchestrator) encodeEvent(ev engine.Event, withJob bool) ([]byte, error) {
	if !o.keepEvent(ev) {
		return nil, nil
	}
	if o.history == nil && ev.Type != engine.EventCancelTask {
		return encodeConsoleEvent(ev)
	}
	return encodeOutboxEvent(api.RedactEvent(ev), withJob)
}

// historyConsumer names the outbox consumer that writes the audit trail.
const historyConsumer = "history"

// onEvent observes events in this process, after their commit. History and
// WebSocket commands read the outbox instead (see history.go).
func (o *Orchestrator) onEvent(ev engine.Event) {
	o.metrics.Observe(ev)
	o.figures.Observe(ev)
	o.notifyConsoleInProcess(ev)
	if o.cfg.OnEvent != nil {
		o.cfg.OnEvent(ev)
	}
}

// reload (re)reads the clients and workers files; on any error the running
// configuration stays.
func (o *Orchestrator) reload() (clients, workers int, err error) {
	list, tokens, err := auth.LoadClients(o.cfg.ClientsFile)
	if err != nil {
		return 0, 0, err
	}
	for _, c := range o.cfg.Clients {
		list = append(list, auth.Client{Name: c.Name, Plan: c.Plan, Params: c.Params, MonthlyAttempts: c.MonthlyAttempts, RateLimit: c.RateLimit})
		tokens[c.Name] = c.Token
	}
	individual, err := o.loadWorkers()
	if err != nil {
		return 0, 0, err
	}
	if err := o.clients.Replace(list, tokens); err != nil {
		return 0, 0, err
	}
	o.workers.Replace(individual, o.cfg.GlobalWorkerToken)
	return o.clients.Len(), o.workers.Len(), nil
}

// reloadWorkers re-reads workers.toml only.
func (o *Orchestrator) reloadWorkers() (int, error) {
	individual, err := o.loadWorkers()
	if err != nil {
		return 0, err
	}
	o.workers.Replace(individual, o.cfg.GlobalWorkerToken)
	return o.workers.Len(), nil
}

// loadWorkers reads workers.toml, with Config.WorkerTokens over it.
func (o *Orchestrator) loadWorkers() (map[string]string, error) {
	individual, err := auth.LoadWorkers(o.cfg.WorkersFile)
	if err != nil {
		return nil, err
	}
	for id, tok := range o.cfg.WorkerTokens {
		individual[id] = tok
	}
	return individual, nil
}

// Register validates and adds blueprints. Register before Start.
func (o *Orchestrator) Register(bps ...*blueprint.Blueprint) error {
	for _, bp := range bps {
		if err := o.eng.Register(bp); err != nil {
			return err
		}
	}
	return nil
}

// Start starts running jobs and builds the HTTP routes of the registered
// blueprints.
func (o *Orchestrator) Start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started {
		return errors.New("orchestrator already started")
	}
	schedules, problems := scheduler.Load(o.cfg.SchedulesFile, func(name string) bool {
		_, ok := o.eng.Blueprint(name)
		return ok
	})
	for _, p := range problems {
		o.cfg.Logger.Error("schedule skipped", "error", p)
	}
	o.scheduler = scheduler.New(schedules, o.cfg.Store, o.startScheduled, o.cfg.Logger, func(s scheduler.Schedule, r scheduler.Run) {
		o.metrics.SchedulerRun(s.Name, r.Error != "")
	})
	s, err := api.New(api.Options{
		Engine: o.eng, Clients: o.clients, Workers: o.workers, Logger: o.cfg.Logger,
		AdminToken: o.cfg.AdminToken, Reload: o.reload, ReloadWorkers: o.reloadWorkers, TaskSigningKey: o.cfg.OrchestratorSecretKey, Schedules: o.scheduleInfo, MaxBodyBytes: o.cfg.MaxBodyBytes,
		History: o.history, FlushHistory: o.flushHistory,
		Metrics: o.metrics.Handler(),
		WrapHandler: func(h http.Handler) http.Handler {
			return tracing.TraceHTTP(o.cfg.TracerProvider, o.metrics.WrapHTTP(h))
		},
		RateLimit: o.cfg.RateLimit, RatePeriod: o.cfg.RatePeriod, BuildVersion: o.cfg.BuildVersion,
		Blobs: o.blobs.store, BlobHandler: o.blobs.handler, MaxUploadBytes: o.cfg.MaxUploadBytes,
		S3ConfigHash: blob.ConfigHash(o.blobs.store), PublicURL: o.cfg.PublicURL,
	})
	if err != nil {
		return err
	}
	if err := o.mountConsole(s); err != nil {
		return err
	}
	// The local outbox consumers (the console's live view, WebSocket
	// commands) start before anything can happen that they must see: the
	// relay's goroutine may run well after the API answers.
	beginCtx, cancelBegin := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelBegin()
	if err := o.relay.Begin(beginCtx); err != nil {
		return err
	}
	if err := o.eng.Start(); err != nil {
		return err
	}
	o.api.Store(s)
	relayCtx, stopRelay := context.WithCancel(context.Background())
	o.stopRelay, o.relayDone = stopRelay, make(chan struct{})
	go func() {
		defer close(o.relayDone)
		var wg sync.WaitGroup
		wg.Go(func() { o.watchLiveState(relayCtx) })
		wg.Go(func() { o.figures.Run(relayCtx) })
		if o.consoleByOutboxOnly() {
			wg.Go(func() { o.audience.run(relayCtx) })
		}
		o.relay.Run(relayCtx)
		wg.Wait()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	o.stopSched, o.schedDone = cancel, make(chan struct{})
	go func() {
		defer close(o.schedDone)
		o.scheduler.Run(ctx)
	}()
	o.started = true
	return nil
}

// startScheduled creates the job of a schedule, owned by the internal
// client "scheduler".
func (o *Orchestrator) startScheduled(ctx context.Context, s scheduler.Schedule) (string, error) {
	j, err := o.eng.CreateJob(ctx, engine.NewJob{
		Blueprint: s.Blueprint, InitialData: s.InitialData,
		Client: blueprint.Client{Name: SchedulerClient, Plan: "system", Params: map[string]any{"schedule": s.Name}},
	})
	if err != nil {
		return "", err
	}
	return j.ID, nil
}

// SchedulerClient owns the jobs the scheduler starts. API clients cannot see
// them.
// clients.toml cannot name a client so.
const SchedulerClient = auth.SchedulerClient

func (o *Orchestrator) scheduleInfo(ctx context.Context) ([]protocol.ScheduleInfo, error) {
	var out []protocol.ScheduleInfo
	now := time.Now()
	for _, s := range o.scheduler.Schedules() {
		info := protocol.ScheduleInfo{Name: s.Name, Blueprint: s.Blueprint, Schedule: s.Spec, Timezone: s.Location.String(),
			NextRun: s.Next(now).UTC(), Data: s.InitialData}
		last, ok, err := o.scheduler.LastRun(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			info.LastRun = &protocol.ScheduleRun{Tick: last.Tick, At: last.At, JobID: last.JobID, Error: last.Error}
		}
		recent, err := o.scheduler.RecentRuns(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		for _, r := range recent {
			info.RecentRuns = append(info.RecentRuns, protocol.ScheduleRun{Tick: r.Tick, At: r.At, JobID: r.JobID, Error: r.Error})
		}
		if len(info.RecentRuns) == 0 && info.LastRun != nil {
			// Recorded before the recent runs were kept.
			info.RecentRuns = []protocol.ScheduleRun{*info.LastRun}
		}
		out = append(out, info)
	}
	return out, nil
}

// Stop closes worker WebSockets, stops taking work, releases long polls and
// waits, until ctx ends, for job steps in progress. Work left in the store is
// resumed by the next orchestrator on it.
func (o *Orchestrator) Stop(ctx context.Context) error {
	o.mu.Lock()
	started := o.started
	o.started = false
	o.mu.Unlock()
	if !started {
		return nil
	}
	o.stopSched()
	<-o.schedDone
	o.closeHTTP()
	err := o.eng.Stop(ctx)
	if o.history != nil {
		// Write the audit trail up to the stop while ctx allows; what is
		// left stays in the outbox for the next process.
		if cerr := o.relay.CaughtUp(ctx, historyConsumer); cerr != nil {
			err = errors.Join(err, fmt.Errorf("history not written up to the stop (the next start writes the rest): %w", cerr))
		}
	}
	o.stopRelay()
	<-o.relayDone
	return err
}

// Close stops the orchestrator if needed and closes the history database
// and the store it opened.
func (o *Orchestrator) Close(ctx context.Context) error {
	err := o.Stop(ctx)
	if o.history != nil {
		err = errors.Join(err, o.history.Close())
	}
	err = errors.Join(err, o.blobs.close())
	if o.ownStore {
		err = errors.Join(err, o.cfg.Store.Close())
	}
	return err
}

// flushHistory waits until the audit trail holds every event committed
// before the call.
func (o *Orchestrator) flushHistory(ctx context.Context) error {
	if o.history == nil {
		return nil
	}
	return o.relay.CaughtUp(ctx, historyConsumer)
}

// Handler serves the HTTP API. Before Start it answers 503.
func (o *Orchestrator) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := o.api.Load()
		if s == nil {
			http.Error(w, `{"error":"the orchestrator is not started"}`, http.StatusServiceUnavailable)
			return
		}
		s.Handler().ServeHTTP(w, r)
	})
}

// JobOption sets optional fields of a new job.
type JobOption func(*engine.NewJob)

// WithClient sets the job's owner (by client name).
func WithClient(name string) JobOption {
	return func(n *engine.NewJob) { n.Client = blueprint.Client{Name: name} }
}

// WithWebhook sets the URL notified when the job ends.
func WithWebhook(url string) JobOption { return func(n *engine.NewJob) { n.WebhookURL = url } }

// CreateJob starts a job of the named blueprint from Go code. Without
// WithClient it belongs to the internal client "internal", which API
// clients cannot see.
func (o *Orchestrator) CreateJob(ctx context.Context, blueprintName string, initialData map[string]any, opts ...JobOption) (*Job, error) {
	req := engine.NewJob{Blueprint: blueprintName, InitialData: initialData, Client: blueprint.Client{Name: auth.InternalClient}}
	for _, opt := range opts {
		opt(&req)
	}
	return o.eng.CreateJob(ctx, req)
}

// Job returns a job's current record.
func (o *Orchestrator) Job(ctx context.Context, id string) (*Job, error) {
	return o.eng.GetJob(ctx, id)
}

// CancelJob cancels a job that has not ended.
func (o *Orchestrator) CancelJob(ctx context.Context, id string) error {
	_, err := o.eng.CancelJob(ctx, id, "cancelled")
	return err
}

// Approve delivers a human decision to a job waiting for one.
func (o *Orchestrator) Approve(ctx context.Context, id, decision string) error {
	_, err := o.eng.Approve(ctx, id, decision)
	if err != nil {
		return fmt.Errorf("approve job %s: %w", id, err)
	}
	return nil
}
