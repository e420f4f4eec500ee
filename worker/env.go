package worker

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/internal/logging"
	"github.com/avtomatika-ai/avtomatika-go/internal/tracing"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// placeholderToken is the upstream SDK's default WORKER_TOKEN.
const placeholderToken = "your-secret-worker-token"

// defaultOrchestratorURL is ORCHESTRATOR_URL's default.
const defaultOrchestratorURL = "http://localhost:8080"

// ConfigFromEnv builds a Config from the environment variables of the
// upstream Python SDK:
//
//	WORKER_ID                  worker id (worker-<uuid>); an invalid id is an error
//	WORKER_TYPE                worker type (generic-worker)
//	WORKER_PORT                health server (GET /health, /metrics): a port, served on all
//	                           interfaces, or host:port; unset or 0: no server
//	ORCHESTRATOR_URL           one orchestrator (http://localhost:8080)
//	ORCHESTRATORS_CONFIG       JSON [{"url","priority"(10),"weight"(1),"token"?}], sorted by
//	                           (priority, url); wins over ORCHESTRATOR_URL; invalid JSON is
//	                           logged and ignored; an entry without url is an error
//	MULTI_ORCHESTRATOR_MODE    WATERFALL (default), ROUND_ROBIN or FAILOVER
//	WORKER_INDIVIDUAL_TOKEN    master token; wins over WORKER_TOKEN
//	WORKER_TOKEN               master token
//	ORCHESTRATOR_SECRET_KEY    the orchestrator's task signing key: unsigned or
//	                           wrongly signed tasks are refused (SECURITY_ERROR)
//	TLS_CA_PATH, TLS_CERT_PATH, TLS_KEY_PATH   HTTPS trust and client certificate (mTLS)
//	WORKER_STS                 use short-lived access tokens (default: on when TLS is set)
//	COST_PER_SKILL             JSON {"skill": price}
//	MAX_CONCURRENT_TASKS       concurrency limit (10)
//	TASK_POLL_CONCURRENCY      long polls at once while tasks keep coming (MAX_CONCURRENT_TASKS, at most 4)
//	CPU_CORES, RAM_GB          declared CPU cores and memory (detected when unset)
//	GPU_MODEL, GPU_ID (0), GPU_VRAM_GB   a declared GPU (detected with nvidia-smi when unset)
//	WORKER_DEVICES             JSON list of devices {"type","model","id","properties"}
//	WORKER_DETECT_RESOURCES    false: no hardware detection (true)
//	INSTALLED_SOFTWARE         JSON {"name": "version"}
//	INSTALLED_ARTIFACTS        JSON [{"name","version","type","properties"}]
//	WORKER_EXTRA_<NAME>        capabilities.extra["<name>"]; JSON when it starts with { or [
//	WORKER_ENABLE_WEBSOCKETS   open the WebSocket command channel (false)
//	HEARTBEAT_INTERVAL         seconds (10)
//	WORKER_HEARTBEAT_DEBOUNCE_DELAY, WORKER_HEARTBEAT_COOLDOWN   seconds (0.1, 1)
//	TASK_POLL_TIMEOUT          seconds (30)
//	TASK_POLL_ERROR_DELAY      first poll back-off, seconds (5)
//	POLL_BACKOFF_MAX           seconds (60)
//	IDLE_POLL_DELAY            seconds (0.01)
//	REGISTRATION_RETRY_INITIAL_DELAY, REGISTRATION_RETRY_MAX_DELAY   seconds (1, 60)
//	REGISTRATION_MAX_AUTH_FAILURES   registrations refused with 401/403 in a row before the
//	                           worker gives up on an orchestrator (3; 0: never)
//	RATE_LIMIT_BACKOFF_FLOOR   seconds (30)
//	RESULT_MAX_RETRIES         attempts (5)
//	RESULT_RETRY_INITIAL_DELAY seconds (1)
//	WORKER_SHUTDOWN_TIMEOUT    seconds (30)
//	WORKER_REQUEST_TIMEOUT     seconds (15)
//	S3_ENDPOINT_URL            S3 server (http:// for plain HTTP); switches blob transfers on
//	S3_ACCESS_KEY, S3_SECRET_KEY   required with S3_ENDPOINT_URL
//	S3_DEFAULT_BUCKET          bucket (avtomatika-payloads)
//	S3_REGION                  region (us-east-1)
//	S3_FORCE_PATH_STYLE        true: path-style URLs; virtual; false/auto (by endpoint)
//	BLOB_DIR                   local blob folder shared with the orchestrator, when S3 is not set
//	TASK_FILES_DIR             root of the per-task folders (<temp>/avtomatika-payloads)
//	S3_OFFLOAD_THRESHOLD       result data above this many JSON bytes is stored as objects
//	                           (1048576; 0: never)
//	LOG_LEVEL, LOG_FORMAT      DEBUG/INFO/WARN/ERROR, text/json (logs to stdout when set)
//
// Bad values are reported together in the returned error. Durations are
// seconds, fractions allowed.
func ConfigFromEnv() (Config, error) {
	return configFromEnv(os.LookupEnv, os.Environ())
}

// ConfigFromVars reads the configuration from vars, with the names and rules
// of ConfigFromEnv, ignoring the process environment: for programs that run
// several workers in one process.
func ConfigFromVars(vars map[string]string) (Config, error) {
	environ := make([]string, 0, len(vars))
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	return configFromEnv(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}, environ)
}

// ConfigFromEnvWithDefaults is ConfigFromEnv where defaults supplies values
// for variables the environment does not set, so that a program can ship its
// own defaults (an id, a token, prices) and still let the environment win.
func ConfigFromEnvWithDefaults(defaults map[string]string) (Config, error) {
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		v, ok := defaults[name]
		return v, ok
	}
	environ := os.Environ()
	for k, v := range defaults {
		if _, set := os.LookupEnv(k); !set {
			environ = append(environ, k+"="+v)
		}
	}
	return configFromEnv(lookup, environ)
}

type envReader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (e *envReader) str(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (e *envReader) fail(name string, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (e *envReader) int(name string, min int) (int, bool) {
	s, ok := e.str(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		e.fail(name, "want an integer >= %d, got %q", min, s)
		return 0, false
	}
	return n, true
}

func (e *envReader) float(name string) (float64, bool) {
	s, ok := e.str(name)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		e.fail(name, "want a non-negative number, got %q", s)
		return 0, false
	}
	return f, true
}

func (e *envReader) bool(name string) (bool, bool) {
	s, ok := e.str(name)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "y", "on":
		return true, true
	case "0", "f", "false", "no", "n", "off":
		return false, true
	}
	e.fail(name, "want true or false, got %q", s)
	return false, false
}

// seconds sets *d from a number of seconds. A zero value means "none" and is
// stored as zeroAs (the Config's zero means "default").
func (e *envReader) seconds(name string, d *time.Duration, zeroAs time.Duration) {
	f, ok := e.float(name)
	if !ok {
		return
	}
	if f == 0 {
		if zeroAs == 0 {
			e.fail(name, "must be greater than 0")
			return
		}
		*d = zeroAs
		return
	}
	*d = time.Duration(f * float64(time.Second))
}

// json decodes a JSON variable into v.
func (e *envReader) json(name string, v any) bool {
	s, ok := e.str(name)
	if !ok {
		return false
	}
	if err := strictUnmarshal([]byte(s), v); err != nil {
		e.fail(name, "invalid JSON: %v", err)
		return false
	}
	return true
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the value")
	}
	return nil
}

func configFromEnv(lookup func(string) (string, bool), environ []string) (Config, error) {
	e := &envReader{lookup: lookup}
	var c Config

	c.Logger = e.logger()
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}

	if id, ok := e.str("WORKER_ID"); ok {
		if !validIdent(id) {
			e.fail("WORKER_ID", "invalid worker id %q: must match %s", id, identRE)
		}
		c.ID = id
	} else {
		c.ID = "worker-" + uuid.NewString()
	}
	if t, ok := e.str("WORKER_TYPE"); ok {
		c.Type = t
	}
	// No health server unless asked for: a fixed default port made a second
	// worker on the same host fail with "address already in use".
	if v, ok := e.str("WORKER_PORT"); ok {
		addr, err := healthAddr(v)
		if err != nil {
			e.fail("WORKER_PORT", "%v", err)
		}
		c.HealthAddr = addr
	}

	// Orchestrators.
	single := defaultOrchestratorURL
	if u, ok := e.str("ORCHESTRATOR_URL"); ok {
		single = u
	}
	c.Orchestrators = []Orchestrator{{URL: single, Priority: 1, Weight: 1}}
	if raw, ok := e.str("ORCHESTRATORS_CONFIG"); ok {
		list, err := parseOrchestratorsConfig([]byte(raw))
		switch {
		case errors.Is(err, errOrchestratorsJSON):
			log.Warn("ORCHESTRATORS_CONFIG is not valid JSON; using ORCHESTRATOR_URL", "error", err, "url", single)
		case err != nil:
			e.fail("ORCHESTRATORS_CONFIG", "%v", err)
		default:
			if _, set := e.str("ORCHESTRATOR_URL"); set {
				log.Info("ORCHESTRATORS_CONFIG takes precedence over ORCHESTRATOR_URL")
			}
			c.Orchestrators = list
		}
	}
	if m, ok := e.str("MULTI_ORCHESTRATOR_MODE"); ok {
		mode := MultiMode(strings.ToUpper(m))
		switch mode {
		case Waterfall, RoundRobin, Failover:
			c.Mode = mode
		default:
			e.fail("MULTI_ORCHESTRATOR_MODE", "want WATERFALL, ROUND_ROBIN or FAILOVER, got %q", m)
		}
	}

	// Credentials.
	if t, ok := e.str("WORKER_INDIVIDUAL_TOKEN"); ok {
		c.Token = t
	} else if t, ok := e.str("WORKER_TOKEN"); ok {
		c.Token = t
	}
	c.OrchestratorSecretKey, _ = e.str("ORCHESTRATOR_SECRET_KEY")
	if c.Token == placeholderToken {
		log.Warn("WORKER_TOKEN is still the upstream placeholder; the orchestrator will reject this worker's signatures")
	}
	c.TLS = e.tlsConfig()
	if sts, ok := e.bool("WORKER_STS"); ok {
		c.STS = sts
	} else {
		c.STS = c.TLS != nil
	}

	// Capabilities.
	e.json("COST_PER_SKILL", &c.CostPerSkill)
	for name, p := range c.CostPerSkill {
		if p < 0 || math.IsNaN(p) {
			e.fail("COST_PER_SKILL", "negative price for %q", name)
		}
	}
	if n, ok := e.int("MAX_CONCURRENT_TASKS", 1); ok {
		c.MaxConcurrentTasks = n
	}
	if n, ok := e.int("TASK_POLL_CONCURRENCY", 1); ok {
		c.PollConcurrency = n
	}
	if n, ok := e.int("CPU_CORES", 0); ok {
		c.Resources.CPUCores = n
	}
	if f, ok := e.float("RAM_GB"); ok {
		c.Resources.RAMGB = f
	}
	if model, ok := e.str("GPU_MODEL"); ok {
		g := GPU{ID: "0", Model: model}
		if id, ok := e.str("GPU_ID"); ok {
			g.ID = id
		}
		if f, ok := e.float("GPU_VRAM_GB"); ok {
			g.MemoryGB = f
		}
		c.Resources.GPUs = []GPU{g}
	}
	if raw, ok := e.str("WORKER_DEVICES"); ok {
		devs, err := parseDevices([]byte(raw))
		if err != nil {
			e.fail("WORKER_DEVICES", "%v", err)
		}
		c.Resources.Devices = devs
	}
	if detect, ok := e.bool("WORKER_DETECT_RESOURCES"); ok {
		c.Resources.DisableDetection = !detect
	}
	e.json("INSTALLED_SOFTWARE", &c.InstalledSoftware)
	e.json("INSTALLED_ARTIFACTS", &c.InstalledArtifacts)
	for i, a := range c.InstalledArtifacts {
		if a.Name == "" {
			e.fail("INSTALLED_ARTIFACTS", "entry %d has no name", i)
		}
	}
	extra, err := parseExtras(environ)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	c.Extra = extra
	if ws, ok := e.bool("WORKER_ENABLE_WEBSOCKETS"); ok {
		c.EnableWebSockets = ws
	}

	// Timing.
	const none = time.Nanosecond
	e.seconds("HEARTBEAT_INTERVAL", &c.HeartbeatInterval, 0)
	e.seconds("WORKER_HEARTBEAT_DEBOUNCE_DELAY", &c.HeartbeatDebounce, none)
	e.seconds("WORKER_HEARTBEAT_COOLDOWN", &c.HeartbeatCooldown, none)
	e.seconds("TASK_POLL_TIMEOUT", &c.PollTimeout, 0)
	e.seconds("TASK_POLL_ERROR_DELAY", &c.PollErrorDelay, none)
	e.seconds("POLL_BACKOFF_MAX", &c.PollBackoffMax, 0)
	e.seconds("IDLE_POLL_DELAY", &c.IdlePollDelay, -1)
	e.seconds("REGISTRATION_RETRY_INITIAL_DELAY", &c.RetryDelay, none)
	e.seconds("REGISTRATION_RETRY_MAX_DELAY", &c.RetryMaxDelay, 0)
	e.seconds("RATE_LIMIT_BACKOFF_FLOOR", &c.RateLimitFloor, none)
	e.seconds("RESULT_RETRY_INITIAL_DELAY", &c.ResultRetryDelay, none)
	e.seconds("WORKER_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, none)
	e.seconds("WORKER_REQUEST_TIMEOUT", &c.RequestTimeout, 0)
	if n, ok := e.int("RESULT_MAX_RETRIES", 1); ok {
		c.ResultMaxRetries = n
	}
	if n, ok := e.int("REGISTRATION_MAX_AUTH_FAILURES", 0); ok {
		c.RegistrationMaxAuthFailures = n
		if n == 0 {
			c.RegistrationMaxAuthFailures = -1 // never give up
		}
	}

	// Blob storage.
	if v, ok := e.str("S3_ENDPOINT_URL"); ok {
		c.S3.Endpoint = v
		c.S3.AccessKey, _ = e.str("S3_ACCESS_KEY")
		c.S3.SecretKey, _ = e.str("S3_SECRET_KEY")
		if err := c.S3.Check(); err != nil {
			e.fail("S3_ENDPOINT_URL", "%v", err)
		}
	}
	c.S3.Bucket = blob.DefaultBucket
	if v, ok := e.str("S3_DEFAULT_BUCKET"); ok {
		c.S3.Bucket = v
	}
	if v, ok := e.str("S3_REGION"); ok {
		c.S3.Region = v
	}
	if v, ok := e.str("S3_FORCE_PATH_STYLE"); ok {
		style, ok := blobs3.ParsePathStyle(v)
		if !ok {
			e.fail("S3_FORCE_PATH_STYLE", "want true, false, auto or virtual, got %q", v)
		}
		c.S3.PathStyle = style
	}
	if v, ok := e.str("BLOB_DIR"); ok && !strings.EqualFold(v, "none") {
		c.BlobDir = v
	}
	if v, ok := e.str("TASK_FILES_DIR"); ok {
		c.TaskFilesDir = v
	}
	if n, ok := e.int("S3_OFFLOAD_THRESHOLD", 0); ok {
		c.OffloadThreshold = int64(n)
		if n == 0 {
			c.OffloadThreshold = -1
		}
	}

	if len(e.errs) > 0 {
		return c, fmt.Errorf("worker: invalid environment: %w", errors.Join(e.errs...))
	}
	return c, nil
}

// healthAddr reads WORKER_PORT: a port number (all interfaces) or a
// host:port; "0" means no server ("").
func healthAddr(v string) (string, error) {
	host, port := "", v
	if strings.Contains(v, ":") {
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			return "", fmt.Errorf("want a port or host:port, got %q", v)
		}
		host, port = h, p
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("want a port (0-65535) or host:port, got %q", v)
	}
	if n == 0 && host == "" {
		return "", nil
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// logger builds a stdout logger from LOG_LEVEL and LOG_FORMAT, or returns nil
// when neither is set.
func (e *envReader) logger() *slog.Logger {
	level, lok := e.str("LOG_LEVEL")
	format, fok := e.str("LOG_FORMAT")
	if !lok && !fok {
		return nil
	}
	var lv slog.Level
	switch strings.ToUpper(level) {
	case "", "INFO":
		lv = slog.LevelInfo
	case "DEBUG":
		lv = slog.LevelDebug
	case "WARN", "WARNING":
		lv = slog.LevelWarn
	case "ERROR", "CRITICAL":
		lv = slog.LevelError
	default:
		e.fail("LOG_LEVEL", "want DEBUG, INFO, WARN or ERROR, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: logging.Redact}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(os.Stdout, opts))
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stdout, opts))
	}
	e.fail("LOG_FORMAT", "want text or json, got %q", format)
	return nil
}

func (e *envReader) tlsConfig() *tls.Config {
	ca, caOK := e.str("TLS_CA_PATH")
	cert, certOK := e.str("TLS_CERT_PATH")
	key, keyOK := e.str("TLS_KEY_PATH")
	if !caOK && !certOK && !keyOK {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caOK {
		pem, err := os.ReadFile(ca)
		if err != nil {
			e.fail("TLS_CA_PATH", "%v", err)
			return nil
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			e.fail("TLS_CA_PATH", "no PEM certificate in %s", ca)
			return nil
		}
		cfg.RootCAs = pool
	}
	if certOK != keyOK {
		e.fail("TLS_CERT_PATH", "TLS_CERT_PATH and TLS_KEY_PATH must be set together")
		return nil
	}
	if certOK {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			e.fail("TLS_CERT_PATH", "%v", err)
			return nil
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// errOrchestratorsJSON marks an ORCHESTRATORS_CONFIG that is not a JSON list
// of objects: the worker falls back to ORCHESTRATOR_URL.
var errOrchestratorsJSON = errors.New("not a JSON list of objects")

// parseOrchestratorsConfig parses ORCHESTRATORS_CONFIG: a JSON list of
// {"url", "priority", "weight", "token"}. Missing priority is 10, missing
// weight 1; the result is sorted by (priority, url).
func parseOrchestratorsConfig(raw []byte) ([]Orchestrator, error) {
	var entries []map[string]json.RawMessage
	if err := strictUnmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: %v", errOrchestratorsJSON, err)
	}
	if len(entries) == 0 {
		return nil, errors.New("empty orchestrator list")
	}
	out := make([]Orchestrator, 0, len(entries))
	for i, ent := range entries {
		if ent == nil {
			return nil, fmt.Errorf("%w: entry %d is null", errOrchestratorsJSON, i)
		}
		o := Orchestrator{Priority: 10, Weight: 1}
		if err := json.Unmarshal(ent["url"], &o.URL); err != nil || o.URL == "" {
			return nil, fmt.Errorf("entry %d: missing or invalid \"url\"", i)
		}
		if v, ok := ent["priority"]; ok && string(v) != "null" {
			n, err := jsonInt(v)
			if err != nil {
				return nil, fmt.Errorf("entry %d (%s): priority: %w", i, o.URL, err)
			}
			o.Priority = n
		}
		if v, ok := ent["weight"]; ok && string(v) != "null" {
			n, err := jsonInt(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("entry %d (%s): weight must be an integer >= 1", i, o.URL)
			}
			o.Weight = n
		}
		if v, ok := ent["token"]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, &o.Token); err != nil {
				return nil, fmt.Errorf("entry %d (%s): token must be a string", i, o.URL)
			}
		}
		if _, err := normalizeBaseURL(o.URL); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b Orchestrator) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.URL, b.URL))
	})
	return out, nil
}

// jsonInt reads an integral JSON number, or a string holding one.
func jsonInt(raw json.RawMessage) (int, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("not a number: %s", raw)
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fmt.Errorf("not an integer: %s", raw)
	}
	return int(f), nil
}

// parseDevices parses WORKER_DEVICES: a JSON list of HardwareDevice.
func parseDevices(raw []byte) ([]protocol.HardwareDevice, error) {
	var devs []protocol.HardwareDevice
	if err := strictUnmarshal(raw, &devs); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	for i, d := range devs {
		if d.Type == "" {
			return nil, fmt.Errorf("device %d has no type", i)
		}
	}
	return devs, nil
}

const extraPrefix = "WORKER_EXTRA_"

// parseExtras collects WORKER_EXTRA_<NAME>=value variables into
// {"<name>": value}: JSON when the value starts with { or [, a string
// otherwise.
func parseExtras(environ []string) (map[string]any, error) {
	var out map[string]any
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, extraPrefix) || len(k) == len(extraPrefix) {
			continue
		}
		name := strings.ToLower(k[len(extraPrefix):])
		val, err := parseExtraValue(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[name] = val
	}
	return out, errors.Join(errs...)
}

func parseExtraValue(v string) (any, error) {
	t := strings.TrimSpace(v)
	if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return v, nil
	}
	val, err := protocol.DecodeJSON([]byte(t))
	if err != nil {
		return nil, err
	}
	return plainJSON(val), nil
}

// plainJSON turns the json.Number values of a decoded document into float64,
// so that values compare and marshal like ordinary JSON.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		for k, e := range x {
			x[k] = plainJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainJSON(e)
		}
	}
	return v
}

// TracingFromEnv returns a tracer provider for Config.TracerProvider,
// configured by the standard OpenTelemetry variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ...): spans go to that
// OTLP/HTTP endpoint, or nowhere, with no overhead, when it is unset. Call
// shutdown before exiting to flush.
func TracingFromEnv(ctx context.Context, defaultService string) (trace.TracerProvider, func(context.Context) error, error) {
	return tracing.Tracing(ctx, defaultService)
}
