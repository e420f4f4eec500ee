package orchestrator_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
)

// The test binary doubles as an orchestrator process: with
// AVTO_HELPER_ORCHESTRATOR set, TestMain serves the flow blueprints on
// AVTO_HELPER_ADDR with the Redis at REDIS_URL (and the history database at
// HISTORY_DATABASE_URI, if set) until SIGTERM; without REDIS_URL, on the
// memory store. AVTO_HELPER_LIVE_CHECK (a duration) is its live store
// check interval (10s by default). Its longest
// worker poll is AVTO_HELPER_POLL_TIMEOUT (a duration, 2s by default);
// AVTO_HELPER_WEBHOOK_ALLOWED_HOSTS (space-separated) lets its webhooks
// reach receivers on loopback.
func TestMain(m *testing.M) {
	if os.Getenv("AVTO_HELPER_ORCHESTRATOR") != "" {
		os.Exit(runHelperOrchestrator())
	}
	if os.Getenv("AVTO_HELPER_WORKER") != "" {
		os.Exit(runHelperWorker()) // workerdeath_test.go
	}
	os.Exit(m.Run())
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// envDuration reads the duration in variable name, def when unset.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

func runHelperOrchestrator() int {
	goredis.SetLogger(discardLogger{}) // dial errors during outages are expected here
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pollTimeout, err := envDuration("AVTO_HELPER_POLL_TIMEOUT", 2*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	liveCheck, err := envDuration("AVTO_HELPER_LIVE_CHECK", 0) // 0: the default
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shards, _ := strconv.Atoi(os.Getenv("REDIS_SHARDS"))
	o, err := orchestrator.New(orchestrator.WithLiveStateTiming(orchestrator.Config{
		Logger: log, RedisURL: os.Getenv("REDIS_URL"), RedisPrefix: os.Getenv("REDIS_KEY_PREFIX"),
		RedisCluster: os.Getenv("REDIS_CLUSTER") == "true", RedisShards: shards,
		HistoryURI:        os.Getenv("HISTORY_DATABASE_URI"),
		GlobalWorkerToken: "tok", Clients: []orchestrator.Client{{Name: "c", Token: "ct"}},
		PollTimeout: pollTimeout, WorkerTTL: 4 * time.Second, StepLease: 2 * time.Second,
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, Addr: os.Getenv("AVTO_HELPER_ADDR"),
		WebhookAllowedHosts: strings.Fields(os.Getenv("AVTO_HELPER_WEBHOOK_ALLOWED_HOSTS")),
	}, liveCheck, 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := o.Register(flowBlueprints()...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := o.ListenAndServe(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = o.Close(context.Background())
	return 0
}

// flowBlueprints: "flow" runs a task, three parallel branches, then the
// child "kid", which runs a task of its own; "late" waits for a skill that
// no worker has at first.
func flowBlueprints() []*blueprint.Blueprint {
	flow := blueprint.New("flow").Endpoint("v1", "/jobs/flow")
	flow.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work", Params: map[string]any{"ms": c.Input("ms")}})
	}, blueprint.On("success", "fan"))
	flow.State("fan", func(c *blueprint.Context) error {
		var tasks []blueprint.Task
		for i := range 3 {
			tasks = append(tasks, blueprint.Task{Type: "branch", Params: map[string]any{"i": i, "ms": c.Input("ms")}})
		}
		return c.DispatchParallel(tasks)
	}, blueprint.FanIn("join"))
	flow.Aggregator("join", func(c *blueprint.Context) error {
		ok := 0
		for _, r := range c.Branches() {
			if r.Status == "success" {
				ok++
			}
		}
		if err := c.Set("branches_ok", ok); err != nil {
			return err
		}
		return c.GoTo("child")
	}, blueprint.To("child"))
	flow.State("child", func(c *blueprint.Context) error {
		return c.RunBlueprint("kid", map[string]any{"ms": c.Input("ms")})
	}, blueprint.Child("kid"), blueprint.On("success", "finished"), blueprint.On("failure", "kid_failed"))
	flow.End("finished", nil)
	flow.End("kid_failed", nil)

	kid := blueprint.New("kid")
	kid.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "kidwork", Params: map[string]any{"ms": c.Input("ms")}})
	}, blueprint.On("success", "finished"))
	kid.End("finished", nil)

	late := blueprint.New("late").Endpoint("v1", "/jobs/late")
	late.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "rare"})
	}, blueprint.On("success", "finished"))
	late.End("finished", nil)
	return []*blueprint.Blueprint{flow, kid, late}
}

// helperOrchestrator is an orchestrator child process.
type helperOrchestrator struct {
	addr string
	cmd  *exec.Cmd
	out  testenv.Buffer // its stdout and stderr
	done chan struct{}
}

// startHelper starts an orchestrator process on addr and waits until it is
// ready; env adds variables (AVTO_HELPER_POLL_TIMEOUT=30s).
func startHelper(t *testing.T, addr, redisURL, prefix string, env ...string) *helperOrchestrator {
	t.Helper()
	h := &helperOrchestrator{addr: addr, done: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^$")
	h.cmd.Env = append(os.Environ(), "AVTO_HELPER_ORCHESTRATOR=1", "AVTO_HELPER_ADDR="+addr,
		"REDIS_URL="+redisURL, "REDIS_KEY_PREFIX="+prefix)
	h.cmd.Env = append(h.cmd.Env, env...)
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("--- orchestrator %s ---\n%s", addr, h.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := httpGet("http://" + addr + "/_public/ready"); err == nil && resp == 200 {
			return h
		}
		select {
		case <-h.done:
			t.Fatalf("orchestrator %s exited:\n%s", addr, h.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("orchestrator %s not ready:\n%s", addr, h.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *helperOrchestrator) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

func (h *helperOrchestrator) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
}
