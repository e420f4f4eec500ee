package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// Options describe one run.
type Options struct {
	Workload string // one of Workloads
	Backend  string // memory or redis
	RedisURL string // for the redis backend
	// RedisCluster, when set, runs the redis backend on the Redis Cluster
	// of these seed addresses instead of RedisURL, with RedisShards shards
	// (12 when 0).
	RedisCluster []string
	RedisShards  int
	History      string // HISTORY_DATABASE_URI; "" or none: off

	Workers     int // SDK workers
	Concurrency int // tasks at once per worker
	Clients     int // client goroutines
	// DataBytes, when above 0, gives every job an initial_data of about
	// that many bytes of JSON (fields of 64-character strings), as the
	// prompts, settings and file lists of real jobs do.
	DataBytes int

	// Drain mode (Rate == 0): the clients create jobs as fast as they go,
	// Jobs of them, or for Duration when Jobs is 0, then wait for all.
	Jobs int
	// Rate mode (when Rate > 0): jobs per second for Duration, open loop;
	// latency counts from each job's intended send time.
	Rate     float64
	Duration time.Duration

	// Warmup jobs run before measuring (connections opened, caches and
	// pools filled), drained and left out of the figures: 100 by default,
	// negative for none.
	Warmup int
	// SettleTimeout bounds the wait for the last jobs after the last send
	// (60s).
	SettleTimeout time.Duration
	// CountUnended, when true, counts the jobs that have not ended at the
	// settle timeout as failed instead of failing the run (for a system
	// that loses jobs).
	CountUnended bool
	// BeforeMeasure, when set, is called after the warm-up, right before
	// the measured jobs are sent (to reset counters, say).
	BeforeMeasure func()
	// StartWorkers, when set, starts Run's workers instead of our SDK
	// workers (workers of another SDK, say): Workers of them with
	// Concurrency slots each, for the orchestrator at url with the worker
	// token. Run waits for them to register, and calls stop before it
	// stops the orchestrator.
	StartWorkers func(ctx context.Context, url, token string) (stop func(), err error)
}

// WithDefaults returns o with every unset field at its default.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

func (o *Options) defaults() {
	if o.Backend == "" {
		o.Backend = "memory"
	}
	if o.RedisURL == "" {
		o.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Clients <= 0 {
		o.Clients = 32
	}
	if o.Jobs <= 0 && o.Duration <= 0 {
		o.Jobs = 2000
	}
	if o.Rate > 0 && o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Warmup == 0 {
		// About a thousand tasks: a warm-up of a hundred 10,000-wide
		// fan-outs would be the longest part of the run.
		o.Warmup = 100
		if n := tasksPerJob(o.Workload); n > 10 {
			o.Warmup = max(1, 1000/n)
		}
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = time.Minute
	}
}

// Result is what a run measured.
type Result struct {
	Workload, Backend, Mode string
	Offered                 float64 // jobs/s asked for (rate mode)
	Jobs                    int     // jobs that finished
	Failed                  int     // jobs that ended otherwise or never ended
	Elapsed                 time.Duration
	Throughput              float64 // finished jobs per second
	P50, P95, P99, Max      time.Duration
	// ProcessMicros is the CPU time, user and system, this process spent
	// per job sent, from the first send to the last end: the
	// orchestrator, the SDK workers and the clients for ours, all of a
	// peer that runs in process (not Redis's, not Python workers').
	ProcessMicros float64
	// AllocKB is the heap this process allocated per job sent, in KiB, and
	// GCShare the part of its CPU time the garbage collector took (its
	// background marking, its assists and its pauses), over the same
	// span: the collector's cost follows what is allocated, so these say
	// what a cut in allocations is worth.
	AllocKB              float64
	GCShare              float64
	RedisCommands        float64            // Redis commands per job (redis backend)
	RedisRoundTrips      float64            // Redis round trips per job (a pipeline is one)
	RedisMicros          float64            // Redis main-thread CPU time per job in µs, from INFO cpu
	RedisByCommand       map[string]float64 // commands per job by name (scripts as script:<name>)
	KeysPerMaster        map[string]int     // the deployment's keys on each master (cluster), at the end
	RedisMicrosPerMaster map[string]float64 // each master's main-thread CPU per job in µs (cluster)
}

func (r Result) String() string {
	s := fmt.Sprintf("%-9s %-6s %-5s jobs=%d failed=%d elapsed=%s throughput=%.0f jobs/s p50=%s p95=%s p99=%s max=%s",
		r.Workload, r.Backend, r.Mode, r.Jobs, r.Failed, r.Elapsed.Round(time.Millisecond), r.Throughput,
		ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max))
	if r.Offered > 0 {
		s += fmt.Sprintf(" offered=%.0f/s", r.Offered)
	}
	s += fmt.Sprintf(" process=%.0fµs/job alloc=%.1fKiB/job gc=%.0f%%", r.ProcessMicros, r.AllocKB, 100*r.GCShare)
	if r.RedisCommands > 0 {
		s += fmt.Sprintf(" redis=%.1f cmds/job %.1f round trips/job %.0fµs/job (ceiling %.0f jobs/s)",
			r.RedisCommands, r.RedisRoundTrips, r.RedisMicros, 1e6/r.RedisMicros)
	}
	if len(r.KeysPerMaster) > 0 {
		addrs := slices.Sorted(maps.Keys(r.KeysPerMaster))
		total := 0
		for _, a := range addrs {
			total += r.KeysPerMaster[a]
		}
		s += " keys per master:"
		for _, a := range addrs {
			s += fmt.Sprintf(" %s=%d (%.1f%%, %.0fµs/job)", a, r.KeysPerMaster[a],
				100*float64(r.KeysPerMaster[a])/float64(max(total, 1)), r.RedisMicrosPerMaster[a])
		}
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Run performs one benchmark run.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	bp, err := blueprintFor(o.Workload)
	if err != nil {
		return Result{}, err
	}
	res := Result{Workload: o.Workload, Backend: o.Backend}

	st, meter, spread, cleanup, err := openStore(ctx, o)
	if err != nil {
		return res, err
	}
	defer cleanup()

	ends := NewEnds()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	orch, err := orchestrator.New(orchestrator.Config{
		Store: st, Logger: quiet, GlobalWorkerToken: "bench-token",
		Clients:     []orchestrator.Client{{Name: "bench", Token: "bench-client"}},
		PollTimeout: 30 * time.Second, HistoryURI: o.History,
		OnEvent: func(ev engine.Event) {
			if ev.Type == engine.EventJobEnded {
				status, _ := ev.Detail["status"].(string)
				ends.Ended(ev.JobID, ev.Time, status == "finished")
			}
		},
	})
	if err != nil {
		return res, err
	}
	defer orch.Close(context.Background())
	if err := orch.Register(bp); err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = orch.Serve(sctx, ln) }()
	defer func() { stop(); wg.Wait() }()
	url := "http://" + ln.Addr().String()

	if n := tasksPerJob(o.Workload); n > 0 && o.StartWorkers != nil {
		stopWorkers, err := o.StartWorkers(sctx, url, "bench-token")
		if err != nil {
			return res, fmt.Errorf("start workers: %w", err)
		}
		defer stopWorkers()
		if err := waitWorkers(ctx, url, o.Workers); err != nil {
			return res, err
		}
	} else if n > 0 {
		for i := range o.Workers {
			w, err := worker.New(worker.Config{
				ID: fmt.Sprintf("bench-worker-%d", i), Token: "bench-token", Orchestrators: []worker.Orchestrator{{URL: url}},
				MaxConcurrentTasks: o.Concurrency, Logger: quiet, IdlePollDelay: -1,
				Resources: worker.Resources{DisableDetection: true, CPUCores: 1},
			})
			if err != nil {
				return res, err
			}
			w.Handle("noop", func(context.Context, *worker.Task) (worker.Result, error) { return worker.Result{}, nil })
			wg.Add(1)
			go func() { defer wg.Done(); _ = w.Run(sctx) }()
		}
		if err := waitWorkers(ctx, url, o.Workers); err != nil {
			return res, err
		}
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	c, err := client.New(url, "bench-client", client.WithHTTPClient(hc))
	if err != nil {
		return res, err
	}
	if meter != nil {
		o.BeforeMeasure = func() { meter.Reset(ctx) }
	}
	data := initialData(o.DataBytes)
	submit := func(ctx context.Context) (string, error) { return c.CreateJob(ctx, "/jobs/"+o.Workload, data) }
	res, err = Drive(ctx, o, submit, ends)
	if err != nil {
		return res, err
	}
	if meter != nil {
		meter.Measure(ctx, &res)
	}
	if spread != nil {
		if res.KeysPerMaster, err = spread(ctx); err != nil {
			return res, fmt.Errorf("count keys per master: %w", err)
		}
	}
	return res, nil
}

func waitWorkers(ctx context.Context, url string, n int) error {
	c, err := client.New(url, "bench-client")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ws, err := c.Workers(ctx); err == nil && len(ws) >= n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("workers did not register")
}

// openStore opens the backend; for Redis it counts commands and uses a
// fresh key prefix, removed afterwards. On a cluster, spread counts the
// deployment's keys on each master.
func openStore(ctx context.Context, o Options) (st store.Store, meter *RedisMeter, spread func(context.Context) (map[string]int, error), cleanup func(), err error) {
	switch o.Backend {
	case "memory":
		return memory.New(memory.Options{}), nil, nil, func() {}, nil
	case "redis":
		prefix := fmt.Sprintf("avtobench-%d", time.Now().UnixNano())
		var rdb goredis.UniversalClient
		var opts redisstore.Options
		if len(o.RedisCluster) > 0 {
			// RESP2, as redisstore.Open speaks unless told otherwise.
			c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: o.RedisCluster, PoolSize: 128, Protocol: 2})
			rdb = c
			opts = redisstore.Options{Prefix: prefix, Shards: cmp.Or(o.RedisShards, 12)}
			spread = func(ctx context.Context) (map[string]int, error) { return redisstore.KeysPerMaster(ctx, c, prefix) }
		} else {
			ro, err := goredis.ParseURL(o.RedisURL)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			ro.PoolSize, ro.Protocol = 128, 2 // RESP2, as redisstore.Open speaks unless told otherwise
			rdb = goredis.NewClient(ro)
			opts = redisstore.Options{Prefix: prefix, Shards: o.RedisShards}
		}
		meter = NewRedisMeter(rdb)
		if st, err = redisstore.New(ctx, rdb, opts); err != nil {
			rdb.Close()
			return nil, nil, nil, nil, err
		}
		return st, meter, spread, func() {
			_ = st.Close()
			deleteKeys(rdb, prefix)
			rdb.Close()
		}, nil
	}
	return nil, nil, nil, nil, fmt.Errorf("unknown backend %q (memory or redis)", o.Backend)
}

// deleteKeys removes a deployment's keys (of all its shards) from every
// server of rdb.
func deleteKeys(rdb goredis.UniversalClient, prefix string) {
	ctx := context.Background()
	matches, err := redisstore.DeploymentKeyPatterns(ctx, rdb, prefix)
	if err != nil {
		return
	}
	eachServer(ctx, rdb, func(ctx context.Context, c *goredis.Client) error {
		for _, match := range matches {
			iter := c.Scan(ctx, 0, match, 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		return nil
	})
}
