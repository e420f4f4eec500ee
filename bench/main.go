// Command bench measures Avtomatika's throughput and create-to-finished
// latency: an in-process orchestrator on a loopback port, SDK workers and
// API clients over real HTTP. See BENCHMARKS.md for the method and figures.
// It is a module of its own (so that its chart library stays out of the
// main module): run it from this folder.
//
//	cd bench
//	go run . -workload one-task -backend memory -duration 10s
//	go run . -workload all -backend memory,redis -jobs 5000 -repeat 3
//	go run . -workload one-task -backend memory,redis -sweep 500,1000,2000 -chart latency.svg
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		workloads   = flag.String("workload", "one-task", "comma-separated workloads, or all: "+strings.Join(harness.Workloads, ", "))
		backends    = flag.String("backend", "memory", "comma-separated backends: memory, redis")
		redisURL    = flag.String("redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for the redis backend (a fresh key prefix, removed afterwards)")
		cluster     = flag.String("redis-cluster", "", "redis backend on a Redis Cluster: comma-separated seed addresses host:port (instead of -redis-url); reports the keys on each master")
		shards      = flag.Int("redis-shards", 0, "redis backend: shards of the live state (default 1 on -redis-url, 12 on -redis-cluster)")
		history     = flag.String("history", "", "history database URI (e.g. sqlite:/tmp/h.db); empty: history off")
		jobs        = flag.Int("jobs", 0, "drain mode: create this many jobs (default 2000 unless -duration is set)")
		duration    = flag.Duration("duration", 0, "drain mode without -jobs: create jobs for this long; rate mode: how long to send")
		rate        = flag.Float64("rate", 0, "open-loop mode: jobs per second (latency counts from the intended send time)")
		sweep       = flag.String("sweep", "", "comma-separated rates: run rate mode at each (with -duration, default 5s) and print a latency table")
		chart       = flag.String("chart", "", "with -sweep: write a latency-against-offered-load chart here (.svg or .png)")
		workers     = flag.Int("workers", 4, "SDK workers")
		concurrency = flag.Int("concurrency", 32, "tasks at once per worker")
		clients     = flag.Int("clients", 32, "client goroutines creating jobs")
		dataBytes   = flag.Int("data-bytes", 0, "initial_data of about this many bytes of JSON per job (0: none)")
		repeat      = flag.Int("repeat", 1, "runs of each combination; the median run (by throughput) is reported")
		cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the runs here, their setup and cleanup included (the drains alone: go tool pprof -ignore deleteKeys)")
		memProfile  = flag.String("memprofile", "", "write an allocation profile here after the runs, their setup and cleanup included (the drains alone: go tool pprof -ignore deleteKeys)")
		traceFile   = flag.String("trace", "", "write an execution trace of the runs here (go tool trace: where latency goes)")
		detail      = flag.Bool("redis-detail", false, "redis backend: also print the Redis commands per job by name")
	)
	flag.Parse()

	wls := splitList(*workloads)
	if len(wls) == 1 && wls[0] == "all" {
		wls = harness.Workloads
	}
	for _, w := range wls {
		if !harness.KnownWorkload(w) {
			return fmt.Errorf("unknown workload %q (known: %s, or fanout-N for any N)", w, strings.Join(harness.Workloads, ", "))
		}
	}
	bes := splitList(*backends)
	for _, b := range bes {
		if b != "memory" && b != "redis" {
			return fmt.Errorf("unknown backend %q (memory or redis)", b)
		}
	}
	rates, err := parseRates(*sweep)
	if err != nil {
		return err
	}
	if *chart != "" && len(rates) == 0 {
		return errors.New("-chart needs -sweep")
	}
	if *repeat < 1 {
		return errors.New("-repeat must be at least 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	for _, r := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {*traceFile, trace.Start, trace.Stop}} {
		if r.path == "" {
			continue
		}
		f, err := os.Create(r.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := r.start(f); err != nil {
			return err
		}
		defer r.stop()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
	}

	fmt.Printf("# %s, %d CPUs, GOMAXPROCS=%d; %d workers × %d slots, %d clients\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), *workers, *concurrency, *clients)
	base := harness.Options{
		RedisURL: *redisURL, RedisCluster: splitList(*cluster), RedisShards: *shards, History: *history,
		Workers: *workers, Concurrency: *concurrency, Clients: *clients, DataBytes: *dataBytes,
		Jobs: *jobs, Duration: *duration, Rate: *rate,
	}
	var points []point
	for _, wl := range wls {
		for _, be := range bes {
			o := base
			o.Workload, o.Backend = wl, be
			if len(rates) == 0 {
				r, err := median(ctx, o, *repeat)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", wl, be, err)
				}
				fmt.Println(r)
				if *detail {
					printBreakdown(r)
				}
				continue
			}
			if o.Duration == 0 {
				o.Duration = 5 * time.Second
			}
			for _, rt := range rates {
				o.Rate, o.Jobs = rt, 0
				r, err := median(ctx, o, *repeat)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					// Far past saturation a run may not settle in time:
					// the series ends there.
					fmt.Printf("# %s on %s at %.0f/s: %v; higher rates skipped\n", wl, be, rt, err)
					break
				}
				fmt.Println(r)
				points = append(points, point{series: wl + " " + be, result: r})
			}
		}
	}
	if *chart != "" {
		if err := drawChart(*chart, points); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Println("# chart written to", *chart)
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return nil
}

// median runs o n times and returns the run with the median throughput.
func median(ctx context.Context, o harness.Options, n int) (harness.Result, error) {
	var rs []harness.Result
	for range n {
		r, err := harness.Run(ctx, o)
		if err != nil {
			return r, err
		}
		if n > 1 {
			fmt.Println("  run:", r)
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Throughput < rs[j].Throughput })
	return rs[len(rs)/2], nil
}

// printBreakdown lists the Redis commands per job, most frequent first.
func printBreakdown(r harness.Result) {
	names := slices.Collect(maps.Keys(r.RedisByCommand))
	sort.Slice(names, func(i, j int) bool { return r.RedisByCommand[names[i]] > r.RedisByCommand[names[j]] })
	for _, n := range names {
		fmt.Printf("  %-26s %6.2f per job\n", n, r.RedisByCommand[n])
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("bad rate %q in -sweep: want positive numbers", p)
		}
		out = append(out, f)
	}
	return out, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
