// Command showcase runs the seed's full example: an orchestrator with the
// full_showcase, metadata_enrichment and periodic_maintenance blueprints, a
// GPU worker, a reliable and an unreliable CPU worker, a webhook receiver, the
// scheduler, and a client that follows a job on a live progress bar.
//
//	go run ./examples/showcase                      # everything in one process
//	go run ./examples/showcase orchestrator         # or each part on its own
//	go run ./examples/showcase worker gpu|cpu-reliable|cpu-unreliable
//	go run ./examples/showcase webhook-receiver
//	go run ./examples/showcase client
//
// Every part is configured by the seed's environment variables; see the
// README for the list. The one-command run configures its three in-process
// workers itself: the worker variables (WORKER_ID, WORKER_TOKEN,
// WORKER_PORT, COST_PER_SKILL, HEARTBEAT_INTERVAL, ...) are ignored there,
// except ORCHESTRATOR_URL and blob storage (S3_*, BLOB_DIR,
// TASK_FILES_DIR). Run "showcase worker KIND" to configure a worker.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/logging"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: showcase [command]

  (no command)                 orchestrator, three workers, webhook receiver and one client run
  orchestrator                 the orchestrator (API_PORT, default 8080)
  worker gpu|cpu-reliable|cpu-unreliable
                               one worker (ORCHESTRATOR_URL, WORKER_ID, WORKER_TOKEN, ...)
  webhook-receiver             the webhook receiver (WEBHOOK_PORT, default 8000)
  client                       create a job and follow it (CLIENT_TOKEN, ORCHESTRATOR_URL, WEBHOOK_URL)

With no command, the three workers run inside the process with the showcase's
settings: worker variables (WORKER_ID, WORKER_TOKEN, WORKER_PORT, ...) are
ignored, except ORCHESTRATOR_URL, S3_*, BLOB_DIR and TASK_FILES_DIR. Use
"showcase worker KIND" to run a worker configured by them.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env, err := readEnv()
	if err != nil {
		fmt.Fprintln(stderr, "showcase:", err)
		return 2
	}
	goredis.SetLogger(logging.RedisLogger{Log: newLogger(stderr, env.logLevel("WARN"))})
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "":
		err = runAll(ctx, env, stdout, stderr)
	case "orchestrator":
		err = runOrchestrator(ctx, env, newLogger(stderr, env.logLevel("INFO")), nil)
	case "worker":
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		err = runWorker(ctx, env, args[1], newLogger(stderr, env.logLevel("INFO")), false)
	case "webhook-receiver":
		err = runReceiver(ctx, env, newLogger(stderr, env.logLevel("INFO")))
	case "client":
		var job *protocol.Job
		job, err = runClient(ctx, env, stdout)
		if err == nil && job.Status != protocol.StatusFinished {
			return 1
		}
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "showcase: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "showcase:", err)
		return 1
	}
	return 0
}

// newLogger logs as text unless LOG_FORMAT=json, with secrets redacted.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logging.Redact}
	if strings.EqualFold(os.Getenv("LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
