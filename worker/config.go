package worker

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/internal/offload"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// MultiMode selects how a worker with several orchestrators polls them.
type MultiMode string

// Polling modes (MULTI_ORCHESTRATOR_MODE).
const (
	// Waterfall polls the orchestrators in priority order and stops at the
	// first one that yields a task; the next cycle starts again at the top.
	Waterfall MultiMode = "WATERFALL"
	// RoundRobin polls one orchestrator per cycle, chosen by smooth weighted
	// round robin over the orchestrators' weights.
	RoundRobin MultiMode = "ROUND_ROBIN"
	// Failover polls every orchestrator in priority order in each cycle,
	// stopping only when the worker has no free capacity.
	Failover MultiMode = "FAILOVER"
)

// Orchestrator is one orchestrator the worker serves.
type Orchestrator struct {
	// URL is the orchestrator's base URL (http, https; ws and wss are
	// accepted and mean http and https).
	URL string
	// Priority orders orchestrators: lower first. The sort is stable, so
	// equal priorities keep their order in Config.Orchestrators
	// (ORCHESTRATORS_CONFIG defaults it to 10 and orders ties by URL).
	Priority int
	// Weight is the ROUND_ROBIN weight; zero means 1.
	Weight int
	// Token, when set, is the worker's master token for this orchestrator
	// only: it is sent as X-Worker-Token and signs the messages sent there.
	// Empty means Config.Token.
	Token string
}

// GPU is one GPU, detected with nvidia-smi or declared in the configuration.
type GPU struct {
	ID       string  // index on the host ("0", "1", ...)
	Model    string  // e.g. "NVIDIA H100 80GB HBM3"
	MemoryGB float64 // memory in GiB
	UUID     string  // optional
}

// Resources declares the worker's hardware. Zero fields are detected on the
// machine when Run starts (unless DisableDetection): CPUCores from the number
// of CPUs usable by the process, RAMGB from /proc/meminfo, GPUs from
// nvidia-smi when it is on PATH. Declared GPUs, or a device of type "gpu" in
// Devices, switch GPU detection off.
type Resources struct {
	CPUCores int
	RAMGB    float64
	GPUs     []GPU
	// Devices are further devices, sent as they are after the GPUs.
	Devices []protocol.HardwareDevice
	// Properties are merged over the computed resources.properties
	// (cpu_cores, ram_gb, gpu_count, gpu_info).
	Properties       map[string]any
	DisableDetection bool
}

// Config configures a Worker. Zero fields take the default given in their
// comment; ConfigFromEnv fills a Config from the upstream environment
// variables.
type Config struct {
	// ID identifies the worker; it must match ^[a-zA-Z0-9_-]+$. Empty means
	// "worker-<uuid>".
	ID string
	// Type is the worker type shown by the orchestrator ("generic-worker").
	Type string
	// Token is the master token: sent as X-Worker-Token and used as the HMAC
	// key of signed messages (individual or global worker token). Required
	// unless every orchestrator has its own Token.
	Token string
	// OrchestratorSecretKey, when set, is the orchestrator's task signing
	// key (ORCHESTRATOR_SECRET_KEY on both sides): a task without its
	// signature (sig), or with a wrong one, is not run and is answered with
	// a SECURITY_ERROR failure (protocol.VerifyTask).
	OrchestratorSecretKey string
	// Orchestrators to serve (at least one), used in Priority order.
	Orchestrators []Orchestrator
	// Mode is the polling mode with several orchestrators (Waterfall).
	Mode MultiMode
	// MaxConcurrentTasks is how many tasks may run at once (10).
	MaxConcurrentTasks int
	// CostPerSkill are prices sent as capabilities.cost_per_skill; the Price
	// skill option adds to it.
	CostPerSkill map[string]float64
	// Resources is the hardware the worker declares.
	Resources Resources
	// InstalledSoftware (name → version) and InstalledArtifacts are matched
	// by the orchestrator against task requirements.
	InstalledSoftware  map[string]string
	InstalledArtifacts []protocol.InstalledArtifact
	// Extra is sent as capabilities.extra (WORKER_EXTRA_* variables). The
	// worker adds max_concurrent_tasks and websockets.
	Extra map[string]any
	// EnableWebSockets opens the command channel (cancel_task and custom
	// commands) to every orchestrator, and sends events over it.
	EnableWebSockets bool
	// STS switches to short-lived access tokens (POST /_worker/auth/token)
	// for X-Worker-Token. Messages are still signed with the master token.
	STS bool
	// TLS configures the HTTPS client (custom CA, client certificate for
	// mTLS). Ignored when HTTPClient is set.
	TLS *tls.Config
	// HTTPClient is used for every request; nil builds one. Its Timeout
	// should be zero: the worker bounds each request itself.
	HTTPClient *http.Client
	// HealthAddr is where Run serves GET /health, e.g. ":8083" or
	// "127.0.0.1:8083" (":0" picks a free port). Empty, the default, means no
	// server, so that several workers can share a host.
	HealthAddr string
	// Logger receives structured logs (slog.Default()).
	Logger *slog.Logger
	// CapacityChecker, when set, vetoes skills dynamically (e.g. on free
	// VRAM): a skill for which it returns false is not advertised as
	// available. It is called often and must be fast; call Worker.Refresh
	// when its answer changes so that orchestrators learn it at once.
	CapacityChecker func(skill string) bool
	// Usage, when set, is called for every heartbeat to report resource use.
	Usage func() *protocol.Usage
	// TracerProvider records a span per task, a child of the orchestrator's
	// dispatch span (its context arrives in the task's tracing_context);
	// the handler's context carries it. Nil records nothing.
	TracerProvider trace.TracerProvider

	HeartbeatInterval time.Duration // steady heartbeat period (10s: the orchestrator's default WORKER_TTL_SECONDS of 20 is two of them)
	HeartbeatDebounce time.Duration // delay before a state-change heartbeat (100ms)
	HeartbeatCooldown time.Duration // minimum gap between heartbeats to one orchestrator (1s)

	PollTimeout time.Duration // long-poll wait asked of the orchestrator (30s)
	// PollConcurrency is how many long polls may be in flight at once while
	// there is room for that many tasks (MaxConcurrentTasks, at most 4).
	PollConcurrency int
	IdlePollDelay   time.Duration // pause after an empty poll cycle (10ms; negative: none)
	PollErrorDelay  time.Duration // first back-off after a poll error, doubling (5s)
	PollBackoffMax  time.Duration // longest poll back-off (60s)

	RetryDelay    time.Duration // first registration/WebSocket retry delay, doubling (1s)
	RetryMaxDelay time.Duration // longest registration/heartbeat/WebSocket back-off (60s)
	// RegistrationMaxAuthFailures is how many registrations in a row an
	// orchestrator may refuse with 401 or 403 before the worker gives up on
	// it with an error naming the token setting (3; negative: never). Other
	// failures (network, 5xx, 429) are retried for ever.
	RegistrationMaxAuthFailures int
	// RateLimitFloor is the shortest wait after a 429 without Retry-After (30s).
	RateLimitFloor time.Duration

	ResultMaxRetries int           // attempts to deliver one result (5)
	ResultRetryDelay time.Duration // first wait between result attempts, doubling (1s)

	// ShutdownTimeout is how long running tasks may go on after Run's context
	// ends; then they are cancelled (30s).
	ShutdownTimeout time.Duration
	// RequestTimeout bounds every request but the long poll (15s).
	RequestTimeout time.Duration

	// Blobs is the blob storage of s3:// params and result files. Nil
	// means S3 when S3.Endpoint is set, else a local folder when BlobDir is
	// set (shared with an orchestrator on the same machine), else none:
	// s3:// values then reach handlers untouched and returned paths are
	// not uploaded.
	Blobs blob.Store
	// S3 (S3_ENDPOINT_URL, S3_ACCESS_KEY, S3_SECRET_KEY, S3_DEFAULT_BUCKET,
	// S3_REGION, S3_FORCE_PATH_STYLE) configures S3 when Blobs is nil. Its
	// endpoint, access key and bucket give capabilities.s3_config_hash.
	S3 blobs3.Options
	// BlobDir (BLOB_DIR) is a local blob folder, used when Blobs is nil and
	// S3 is not configured.
	BlobDir string
	// TaskFilesDir (TASK_FILES_DIR) holds a folder per running task,
	// <TaskFilesDir>/<task_id>, deleted when the task ends (the system temp
	// folder's avtomatika-payloads).
	TaskFilesDir string
	// OffloadThreshold (S3_OFFLOAD_THRESHOLD) is the JSON size of a
	// result's data above which its largest values are stored as objects
	// and sent by reference (1 MiB; negative: never).
	OffloadThreshold int64
}

var identRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// validIdent reports whether s may be a worker id, skill name or skill type.
func validIdent(s string) bool { return identRE.MatchString(s) }

const (
	defaultWorkerType = "generic-worker"
	defaultMaxTasks   = 10
)

// withDefaults returns a copy of c with every zero field set to its default,
// and checks it.
func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		c.ID = "worker-" + uuid.NewString()
	}
	if c.Type == "" {
		c.Type = defaultWorkerType
	}
	if c.Mode == "" {
		c.Mode = Waterfall
	}
	if c.MaxConcurrentTasks == 0 {
		c.MaxConcurrentTasks = defaultMaxTasks
	}
	if c.PollConcurrency == 0 {
		c.PollConcurrency = min(max(c.MaxConcurrentTasks, 1), 4)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.HeartbeatInterval, 10*time.Second)
	setDur(&c.HeartbeatDebounce, 100*time.Millisecond)
	setDur(&c.HeartbeatCooldown, time.Second)
	setDur(&c.PollTimeout, 30*time.Second)
	setDur(&c.IdlePollDelay, 10*time.Millisecond)
	setDur(&c.PollErrorDelay, 5*time.Second)
	setDur(&c.PollBackoffMax, 60*time.Second)
	setDur(&c.RetryDelay, time.Second)
	setDur(&c.RetryMaxDelay, 60*time.Second)
	setDur(&c.RateLimitFloor, 30*time.Second)
	setDur(&c.ResultRetryDelay, time.Second)
	setDur(&c.ShutdownTimeout, 30*time.Second)
	setDur(&c.RequestTimeout, 15*time.Second)
	if c.ResultMaxRetries == 0 {
		c.ResultMaxRetries = 5
	}
	if c.RegistrationMaxAuthFailures == 0 {
		c.RegistrationMaxAuthFailures = 3
	}
	if c.OffloadThreshold == 0 {
		c.OffloadThreshold = offload.DefaultThreshold
	}
	if c.TaskFilesDir == "" {
		c.TaskFilesDir = filepath.Join(os.TempDir(), "avtomatika-payloads")
	}
	if c.IdlePollDelay < 0 {
		c.IdlePollDelay = 0
	}

	var errs []error
	if !validIdent(c.ID) {
		errs = append(errs, fmt.Errorf("invalid worker ID %q: must match %s", c.ID, identRE))
	}
	switch c.Mode {
	case Waterfall, RoundRobin, Failover:
	default:
		errs = append(errs, fmt.Errorf("invalid multi-orchestrator mode %q (want %s, %s or %s)", c.Mode, Waterfall, RoundRobin, Failover))
	}
	if c.MaxConcurrentTasks < 1 {
		errs = append(errs, fmt.Errorf("MaxConcurrentTasks must be at least 1, got %d", c.MaxConcurrentTasks))
	}
	if c.PollConcurrency < 1 {
		errs = append(errs, fmt.Errorf("PollConcurrency must be at least 1, got %d", c.PollConcurrency))
	}
	if c.ResultMaxRetries < 1 {
		c.ResultMaxRetries = 1
	}
	if len(c.Orchestrators) == 0 {
		errs = append(errs, errors.New("no orchestrator configured"))
	}
	for i, o := range c.Orchestrators {
		if _, err := normalizeBaseURL(o.URL); err != nil {
			errs = append(errs, fmt.Errorf("orchestrator %d: %w", i, err))
		}
		if o.Token == "" && c.Token == "" {
			errs = append(errs, fmt.Errorf("orchestrator %d (%s): no token: set Config.Token (WORKER_TOKEN) or the orchestrator's token", i, o.URL))
		}
		if o.Weight < 0 {
			errs = append(errs, fmt.Errorf("orchestrator %d (%s): negative weight", i, o.URL))
		}
	}
	for name, p := range c.CostPerSkill {
		if p < 0 {
			errs = append(errs, fmt.Errorf("negative price %v for skill %q", p, name))
		}
	}
	if dir, err := filepath.Abs(c.TaskFilesDir); err != nil {
		errs = append(errs, fmt.Errorf("TaskFilesDir: %w", err))
	} else {
		c.TaskFilesDir = dir
	}
	if c.Blobs == nil && c.S3.Configured() {
		if err := c.S3.Check(); err != nil {
			errs = append(errs, fmt.Errorf("S3: %w", err))
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("worker: invalid config: %w", errors.Join(errs...))
	}
	c.Orchestrators = sortOrchestrators(c.Orchestrators)
	return c, nil
}

// normalizeBaseURL parses an orchestrator URL: ws and wss become http and
// https, a trailing slash is dropped.
func normalizeBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("invalid URL %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: no host", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// sortOrchestrators orders orchestrators by Priority, keeping the given order
// among equals.
func sortOrchestrators(in []Orchestrator) []Orchestrator {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Orchestrator) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}
