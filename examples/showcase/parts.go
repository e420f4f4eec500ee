package main

import (
	"context"
	"embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/blueprints"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/receiver"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/workers"
	"github.com/avtomatika-ai/avtomatika-go/internal/watch"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

//go:embed config/*.toml
var configFiles embed.FS

// configPath returns the file an environment variable names, or writes the
// embedded default to dir and returns that.
func configPath(envName, file, dir string) (string, error) {
	if p := os.Getenv(envName); p != "" {
		return p, nil
	}
	data, err := configFiles.ReadFile("config/" + file)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, file)
	return p, os.WriteFile(p, data, 0o600)
}

// runOrchestrator serves the showcase blueprints until ctx ends. ready, if
// set, receives the address once the server listens.
func runOrchestrator(ctx context.Context, env showcaseEnv, log *slog.Logger, ready chan<- string) error {
	cfg, err := orchestrator.ConfigFromEnv()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "avtomatika-showcase-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.ClientsFile, err = configPath("CLIENTS_CONFIG_PATH", "clients.toml", dir); err != nil {
		return err
	}
	if cfg.WorkersFile, err = configPath("WORKERS_CONFIG_PATH", "workers.toml", dir); err != nil {
		return err
	}
	if cfg.SchedulesFile, err = configPath("SCHEDULES_CONFIG_PATH", "schedules.toml", dir); err != nil {
		return err
	}
	tp, shutdown, err := orchestrator.TracingFromEnv(ctx, "avtomatika-orchestrator")
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	cfg.TracerProvider = tp
	cfg.Addr = fmt.Sprintf(":%d", env.apiPort)
	cfg.GlobalWorkerToken = env.globalWorkerToken
	if env.adminToken != "" {
		cfg.AdminToken = env.adminToken
	}
	cfg.WebhookSecret = env.webhookSecret
	cfg.WebhookAllowedHosts = append(cfg.WebhookAllowedHosts, env.receiverHost) // its own receiver
	cfg.Logger = log
	o, err := orchestrator.New(cfg)
	if err != nil {
		return err
	}
	defer o.Close(context.WithoutCancel(ctx)) // flushes and closes the history database
	bps := blueprints.Options{Deterministic: env.deterministicBlueprint, TimeScale: env.timeScale}
	if err := o.Register(blueprints.All(bps)...); err != nil {
		return err
	}
	ln, err := listen(env.apiPort, "API_PORT")
	if err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return o.Serve(ctx, ln)
}

// runWorker runs one of the showcase workers until ctx ends. inProcess
// turns the health server off (several workers share one process).
func runWorker(ctx context.Context, env showcaseEnv, kind string, log *slog.Logger, inProcess bool) error {
	k, ok := workers.Kinds()[kind]
	if !ok {
		return fmt.Errorf("unknown worker %q: use one of %s", kind, strings.Join(workers.Names, ", "))
	}
	defaults := map[string]string{"ORCHESTRATOR_URL": env.orchestratorURL}
	for key, v := range k.Defaults {
		defaults[key] = v
	}
	// Blob storage as the orchestrator's: S3 (MinIO) when S3_* are set,
	// else the local folder the orchestrator uses by default. In-process
	// workers read only their defaults, so these are copied there.
	defaults["BLOB_DIR"] = defaultBlobDir
	for _, key := range blobVars {
		if v, ok := os.LookupEnv(key); ok {
			defaults[key] = v
		}
	}
	var cfg worker.Config
	var err error
	if inProcess {
		// One process, three workers: per-worker variables (WORKER_ID,
		// WORKER_TOKEN, ...) would clash, so only the defaults apply, and
		// the health servers stay off.
		defaults["WORKER_PORT"] = "0"
		cfg, err = worker.ConfigFromVars(defaults)
	} else {
		cfg, err = worker.ConfigFromEnvWithDefaults(defaults)
	}
	if err != nil {
		return err
	}
	cfg.Logger = log.With("worker", k.Name)
	tp, shutdown, err := worker.TracingFromEnv(ctx, "avtomatika-worker-"+k.Name)
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	cfg.TracerProvider = tp
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	k.Register(w, workers.Options{Deterministic: env.deterministicWorker, TimeScale: env.timeScale})
	return w.Run(ctx)
}

// defaultBlobDir is the orchestrator's BLOB_DIR default: the parts share
// it when they run from the same folder.
const defaultBlobDir = "avtomatika_blobs"

// blobVars configure blob storage, for the orchestrator and the workers.
var blobVars = []string{"S3_ENDPOINT_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_DEFAULT_BUCKET", "S3_REGION",
	"S3_FORCE_PATH_STYLE", "S3_OFFLOAD_THRESHOLD", "BLOB_DIR", "TASK_FILES_DIR"}

// runReceiver serves the webhook receiver until ctx ends.
func runReceiver(ctx context.Context, env showcaseEnv, log *slog.Logger) error {
	r := receiver.New(env.webhookSecret, log)
	ln, err := listen(env.webhookPort, "WEBHOOK_PORT")
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	log.Info("webhook receiver listening", "addr", ln.Addr().String(), "path", "/webhook")
	return serveUntil(ctx, ln, r.Handler())
}

func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// clientPayload is the seed client's job.
var clientPayload = map[string]any{"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": true}

// runClient creates the seed's job, follows it on a progress bar and
// prints the outcome.
func runClient(ctx context.Context, env showcaseEnv, out io.Writer) (*protocol.Job, error) {
	c, err := client.New(env.orchestratorURL, env.clientToken)
	if err != nil {
		return nil, err
	}
	id, err := c.CreateJob(ctx, "/jobs/"+env.blueprintName, clientPayload, client.WithWebhook(env.webhookURL))
	if err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	fmt.Fprintf(out, "Created job %s (blueprint %s)\n", id, env.blueprintName)
	job, err := watch.Job(ctx, c, id, out)
	if err != nil {
		return nil, err
	}
	watch.Summary(out, job)
	return job, nil
}

// listen opens a TCP port, naming the variable that moves it on failure.
func listen(port int, envName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, fmt.Errorf("%w (set %s to use another port)", err, envName)
	}
	return ln, nil
}
