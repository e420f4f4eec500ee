package orchestrator

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/internal/logging"
	"github.com/avtomatika-ai/avtomatika-go/internal/telemetry"
	"github.com/avtomatika-ai/avtomatika-go/internal/webhook"
)

// ConfigFromEnv reads the configuration from environment variables (the
// upstream names where upstream has one). Every variable and its default is
// listed in the README. A malformed value is an error naming the variable;
// a variable that asks for a backend the program does not link (REDIS_URL,
// HISTORY_DATABASE_URI, S3_ENDPOINT_URL; see orchestrator/backends) is an
// error naming the import to add. HISTORY_DATABASE_URI defaults to the
// SQLite file avtomatika_history.db when SQLite is linked, else to none.
func ConfigFromEnv() (Config, error) { return configFrom(os.LookupEnv) }

type envReader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (e *envReader) str(name, def string) string {
	if v, ok := e.lookup(name); ok {
		return v
	}
	return def
}

// noneIfZero maps a count of 0 from the environment to the -1 that turns a
// feature off in Config (where 0 takes the default).
func noneIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func (e *envReader) int(name string, def int) int {
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a non-negative integer", name, v))
		return def
	}
	return n
}

func (e *envReader) float(name string, def float64) float64 {
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a non-negative number", name, v))
		return def
	}
	return f
}

// seconds reads a duration given in (possibly fractional) seconds.
func (e *envReader) seconds(name string, def time.Duration) time.Duration {
	f := e.float(name, def.Seconds())
	return time.Duration(f * float64(time.Second))
}

func (e *envReader) bool(name string, def bool) bool {
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false", name, v))
	return def
}

// pathStyle reads S3_FORCE_PATH_STYLE: true forces path-style URLs,
// "virtual" forces virtual-host style, false or "auto" lets the client
// choose by endpoint.
func (e *envReader) pathStyle(name string) blob.S3PathStyle {
	v := strings.ToLower(strings.TrimSpace(e.str(name, "")))
	style, ok := blob.ParseS3PathStyle(v)
	if !ok {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want true, false, auto or virtual", name, v))
	}
	return style
}

func configFrom(lookup func(string) (string, bool)) (Config, error) {
	e := &envReader{lookup: lookup}
	port := e.int("API_PORT", 8080)
	cfg := Config{
		Addr:                      net.JoinHostPort(e.str("API_HOST", ""), strconv.Itoa(port)),
		ClientsFile:               e.str("CLIENTS_CONFIG_PATH", ""),
		WorkersFile:               e.str("WORKERS_CONFIG_PATH", ""),
		GlobalWorkerToken:         e.str("GLOBAL_WORKER_TOKEN", ""),
		AdminToken:                e.str("ADMIN_TOKEN", ""),
		MaxBodyBytes:              int64(e.int("MAX_REQUEST_BODY_BYTES", 10<<20)),
		RatePeriod:                e.seconds("RATE_LIMIT_PERIOD", time.Minute),
		MaxRetries:                e.int("JOB_MAX_RETRIES", 3),
		RetryBackoff:              e.seconds("RETRY_BACKOFF_SECONDS", time.Second),
		RetryBackoffMax:           e.seconds("RETRY_BACKOFF_MAX_SECONDS", 30*time.Second),
		TaskTimeout:               e.seconds("WORKER_TIMEOUT_SECONDS", 5*time.Minute),
		DispatchTimeout:           e.seconds("DISPATCH_TIMEOUT_SECONDS", 0),
		PollTimeout:               e.seconds("WORKER_POLL_TIMEOUT_SECONDS", 30*time.Second),
		WorkerTTL:                 e.seconds("WORKER_TTL_SECONDS", 20*time.Second),
		PriorityAging:             e.seconds("PRIORITY_AGING_SECONDS", time.Minute),
		MaxTransitions:            e.int("MAX_TRANSITIONS_PER_JOB", 100),
		MaxFanOut:                 e.int("MAX_FAN_OUT", 10000),
		RecentJobs:                noneIfZero(e.int("RECENT_JOBS", 4096)),
		Executors:                 e.int("EXECUTOR_MAX_CONCURRENT_JOBS", 64),
		StepLease:                 e.seconds("STEP_LEASE_SECONDS", 30*time.Second),
		MinReputation:             e.float("REPUTATION_MIN_THRESHOLD", 0.3),
		ReputationRecoveryPerHour: e.float("REPUTATION_RECOVERY_PER_HOUR", 0.1),
		ReputationClientCap:       e.float("REPUTATION_CLIENT_PENALTY_CAP", 0.35),
		ShutdownTimeout:           e.seconds("SHUTDOWN_TIMEOUT_SECONDS", 30*time.Second),
		SchedulesFile:             e.str("SCHEDULES_CONFIG_PATH", ""),
		HistoryURI:                e.str("HISTORY_DATABASE_URI", defaultHistoryURI()),
		RedisURL:                  e.str("REDIS_URL", ""),
		RedisCluster:              e.bool("REDIS_CLUSTER", false),
		RedisShards:               e.int("REDIS_SHARDS", 1),
		RedisPrefix:               e.str("REDIS_KEY_PREFIX", ""),
		RedisPoolSize:             e.int("REDIS_POOL_SIZE", 0),
		JobRetention:              e.seconds("JOB_RETENTION_SECONDS", 24*time.Hour),
		WebhookSecret:             e.str("WEBHOOK_SECRET", ""),
		OrchestratorSecretKey:     e.str("ORCHESTRATOR_SECRET_KEY", ""),
		WebhookTimeout:            e.seconds("WEBHOOK_TIMEOUT_SECONDS", 10*time.Second),
		WebhookAttempts:           e.int("WEBHOOK_MAX_ATTEMPTS", 200),
		WebhookRetryWindow:        e.seconds("WEBHOOK_RETRY_WINDOW_SECONDS", 24*time.Hour),
		ApprovalTokenTTL:          e.seconds("APPROVAL_TOKEN_TTL_SECONDS", 7*24*time.Hour),
		WebhookBackoffMax:         e.seconds("WEBHOOK_BACKOFF_MAX_SECONDS", 10*time.Minute),
		MetricsWorkerLabels:       e.bool("METRICS_WORKER_LABELS", false),
		MetricsWorkerLabelsMax:    e.int("METRICS_WORKER_LABELS_MAX", telemetry.DefaultMaxWorkerLabels),
	}
	hooks, herr := webhook.ParseAllowedHosts(e.str("WEBHOOK_ALLOWED_HOSTS", ""))
	if herr != nil {
		e.errs = append(e.errs, fmt.Errorf("WEBHOOK_ALLOWED_HOSTS: %w", herr))
	}
	cfg.WebhookAllowedHosts = hooks
	cfg.S3 = blob.S3Options{
		Endpoint: e.str("S3_ENDPOINT_URL", ""), AccessKey: e.str("S3_ACCESS_KEY", ""), SecretKey: e.str("S3_SECRET_KEY", ""),
		Bucket: e.str("S3_DEFAULT_BUCKET", blob.DefaultBucket), Region: e.str("S3_REGION", "us-east-1"),
		PathStyle: e.pathStyle("S3_FORCE_PATH_STYLE"),
	}
	if cfg.S3.Configured() {
		if err := cfg.S3.Check(); err != nil {
			e.errs = append(e.errs, fmt.Errorf("S3_*: %w", err))
		}
	}
	if cfg.BlobDir = e.str("BLOB_DIR", "avtomatika_blobs"); strings.EqualFold(cfg.BlobDir, "none") {
		cfg.BlobDir = ""
	}
	cfg.BlobSigningKey = e.str("BLOB_SIGNING_KEY", "")
	if cfg.OffloadThreshold = int64(e.int("S3_OFFLOAD_THRESHOLD", 1<<20)); cfg.OffloadThreshold == 0 {
		cfg.OffloadThreshold = -1 // explicit zero: never offload
	}
	cfg.KeepBlobs = !e.bool("S3_AUTO_CLEANUP", true)
	cfg.MaxUploadBytes = int64(e.int("MAX_UPLOAD_BYTES", 5<<30))
	cfg.PublicURL = strings.TrimRight(e.str("PUBLIC_URL", ""), "/")
	// Connection limits; an explicit zero turns one off.
	if cfg.RequestBodyTimeout = e.seconds("REQUEST_BODY_TIMEOUT", api.DefaultBodyTimeout); cfg.RequestBodyTimeout == 0 {
		cfg.RequestBodyTimeout = -1
	}
	if cfg.MaxConnections = e.int("MAX_CONNECTIONS", api.DefaultMaxConnections); cfg.MaxConnections == 0 {
		cfg.MaxConnections = -1
	}
	if cfg.MaxConnectionsPerIP = e.int("MAX_CONNECTIONS_PER_IP", api.DefaultMaxConnectionsPerIP); cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = -1
	}
	logger, err := logging.NewLogger(os.Stderr, e.str("LOG_LEVEL", "info"), e.str("LOG_FORMAT", "json"))
	if err != nil {
		e.errs = append(e.errs, err)
	}
	cfg.Logger = logger
	if e.bool("RATE_LIMITING_ENABLED", true) {
		cfg.RateLimit = e.int("RATE_LIMIT_LIMIT", 600)
	}
	// The seed configures Redis by host, port and database number.
	if host := e.str("REDIS_HOST", ""); cfg.RedisURL == "" && host != "" {
		cfg.RedisURL = fmt.Sprintf("redis://%s/%d", net.JoinHostPort(host, strconv.Itoa(e.int("REDIS_PORT", 6379))), e.int("REDIS_DB", 0))
	}
	if port > 65535 {
		e.errs = append(e.errs, fmt.Errorf("API_PORT=%d: not a TCP port", port))
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = -1 // explicit zero: no retries (the engine reads 0 as "default")
	}
	if err := cfg.linked(); err != nil {
		e.errs = append(e.errs, err)
	}
	return cfg, errors.Join(e.errs...)
}

// defaultHistoryURI is the SQLite file when the program links SQLite
// (orchestrator/backends/sqlite), else none.
func defaultHistoryURI() string {
	if backend.Linked(backend.SQLite) {
		return backend.DefaultHistoryURI
	}
	return "none"
}

// linked checks that the backends the configuration names are linked into
// the program (see package orchestrator/backends); the error names the
// imports to add. A well-formed HistoryURI is checked here, a malformed one
// when New opens it.
func (c Config) linked() error {
	var errs []error
	if c.Store == nil && c.RedisURL != "" {
		_, err := backend.Lookup(backend.Redis)
		errs = append(errs, err)
	}
	if c.History == nil {
		if t, err := backend.ParseHistoryURI(c.HistoryURI); err == nil && t.Kind != backend.None {
			_, err := backend.Lookup(t.Kind)
			errs = append(errs, err)
		}
	}
	if c.Blobs == nil && c.S3.Configured() {
		_, err := backend.Lookup(backend.S3)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
