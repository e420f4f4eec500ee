package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
	"github.com/avtomatika-ai/avtomatika-go/client"
)

// pythonOptions are the settings of the runs with Python workers, ours and
// upstream's alike: a settle timeout for a backlog of slow jobs, after
// which the jobs that have not ended count as failed (upstream loses some,
// see README.md), and a warm-up of 20 jobs rather than 100.
func pythonOptions(o harness.Options) harness.Options {
	o.SettleTimeout, o.CountUnended, o.Warmup = 90*time.Second, true, 20
	return o
}

// avtomatikaPythonSystem runs our orchestrator on Redis through harness.Run
// with Python SDK workers (python/noop_worker.py) instead of ours.
func avtomatikaPythonSystem(name, redisURL string, py **pythons) system {
	return system{name: name, python: true, run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		o = pythonOptions(o)
		o.Backend, o.RedisURL = "redis", redisURL
		workers, conc := o.Workers, o.Concurrency
		o.StartWorkers = func(ctx context.Context, url, token string) (func(), error) {
			return (*py).startWorkers(ctx, url, token, workers, conc)
		}
		return harness.Run(ctx, o)
	}}
}

// upstreamSystem runs upstream's orchestrator (avtomatika, Python) on
// database db of the Redis at redisURL, flushed before and after each run,
// with the same Python SDK workers.
func upstreamSystem(name, redisURL string, db int, py **pythons) system {
	return system{name: name, python: true, run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runUpstream(ctx, pythonOptions(o), *py, redisURL, db)
	}}
}

func runUpstream(ctx context.Context, o harness.Options, py *pythons, redisURL string, db int) (harness.Result, error) {
	ropts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return harness.Result{}, err
	}
	ropts.DB = db
	redisHost, redisPort, err := net.SplitHostPort(ropts.Addr)
	if err != nil {
		return harness.Result{}, err
	}
	rdb := goredis.NewClient(ropts)
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return harness.Result{}, fmt.Errorf("flush redis db %d: %w", db, err)
	}
	defer rdb.FlushDB(context.Background())

	// Job ends arrive as UDP datagrams from the orchestrator's
	// on_job_finished subscriber: "<job id> <status> <unix time>".
	ends := harness.NewEnds()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return harness.Result{}, err
	}
	read := make(chan struct{})
	go func() { defer close(read); readEnds(pc, ends) }()
	defer func() { pc.Close(); <-read }()

	port, err := freePort()
	if err != nil {
		return harness.Result{}, err
	}
	url := "http://127.0.0.1:" + port
	sctx, stop := context.WithCancel(ctx)
	orch, err := py.process(sctx, "upstream-orchestrator", py.orchestrator, "upstream_orchestrator.py", map[string]string{
		"REDIS_HOST": redisHost, "REDIS_PORT": redisPort, "REDIS_DB": strconv.Itoa(db),
		"API_HOST": "127.0.0.1", "API_PORT": port, "INSTANCE_ID": "bench",
		"CLIENT_TOKEN": "bench-client", "GLOBAL_WORKER_TOKEN": "bench-token",
		// Upstream's default, 100 requests a minute per client and worker,
		// would stop the benchmark in its first second.
		"RATE_LIMITING_ENABLED": "false",
		// Upstream's watcher (every 20 s) times out every task picked up
		// and not yet finished: pick-up deadlines are time.monotonic()
		// + 300 s, compared with time.time(). An hour between its passes
		// keeps it out of the runs (in upstream's favour; see README.md).
		"WATCHER_INTERVAL_SECONDS": "3600",
		"LOG_LEVEL":                "WARNING",
		"BENCH_ENDS_ADDR":          pc.LocalAddr().String(),
	})
	if err != nil {
		stop()
		return harness.Result{}, err
	}
	exited := make(chan struct{})
	go func() { _ = orch.Wait(); close(exited) }()
	defer func() { stop(); <-exited }()
	if err := waitUp(ctx, url+"/_public/status", exited); err != nil {
		return harness.Result{}, fmt.Errorf("upstream orchestrator: %w\n%s", err, py.tail("upstream-orchestrator"))
	}

	stopWorkers, err := py.startWorkers(sctx, url, "bench-token", o.Workers, o.Concurrency)
	if err != nil {
		return harness.Result{}, err
	}
	defer stopWorkers()
	if err := waitRegistered(ctx, rdb, o.Workers); err != nil {
		return harness.Result{}, fmt.Errorf("%w\n%s", err, py.tail("worker-0"))
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	c, err := client.New(url, "bench-client", client.WithHTTPClient(hc))
	if err != nil {
		return harness.Result{}, err
	}
	// Redis cost: the server's CPU time through the meter, the commands
	// from the server's own count (upstream's client is not ours to hook),
	// so everything else on that Redis server counts too.
	meter := harness.NewRedisMeter(rdb)
	var commandsBase int64
	o.BeforeMeasure = func() {
		meter.Reset(ctx)
		commandsBase = commandsProcessed(ctx, rdb)
	}
	submit := func(ctx context.Context) (string, error) { return c.CreateJob(ctx, "/jobs/"+o.Workload, nil) }
	res, err := harness.Drive(ctx, o, submit, ends)
	if err != nil {
		return res, fmt.Errorf("%w\n%s", err, py.tail("upstream-orchestrator"))
	}
	meter.Measure(ctx, &res)
	if res.Jobs > 0 && commandsBase > 0 {
		res.RedisCommands = float64(commandsProcessed(ctx, rdb)-commandsBase) / float64(res.Jobs)
	}
	res.RedisRoundTrips, res.RedisByCommand = 0, nil
	return res, nil
}

// readEnds records the job ends the orchestrator sends until pc is closed.
func readEnds(pc net.PacketConn, ends *harness.Ends) {
	buf := make([]byte, 512)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) != 3 {
			continue
		}
		secs, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			continue
		}
		ends.Ended(f[0], time.UnixMicro(int64(secs*1e6)), f[1] == "finished")
	}
}

// commandsProcessed is the Redis server's total_commands_processed.
func commandsProcessed(ctx context.Context, rdb *goredis.Client) int64 {
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitUp waits until url answers 200, at most a minute, or until exited
// is closed (the process ended).
func waitUp(ctx context.Context, url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it answered")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("did not answer within a minute")
}

// waitRegistered waits until n workers are in upstream's worker index.
func waitRegistered(ctx context.Context, rdb *goredis.Client, n int) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if c, err := rdb.ZCard(ctx, "orchestrator:index:workers:all").Result(); err == nil && c >= int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%d workers did not register with upstream within a minute", n)
}
