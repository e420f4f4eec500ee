// Command peers compares Avtomatika with asynq, Temporal and upstream's
// Python orchestrator (avtomatika) on this machine, every system driven by the same load driver (harness.Drive):
// drain runs for throughput and open-loop rate runs for latency, in
// interleaved rounds, reported as medians with their spread. See README.md.
//
//	cd bench/peers && go run . -rounds 3 -markdown results.md
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

// A system is one configuration of one system under test; run performs
// one harness-driven run.
type system struct {
	name string
	run  func(ctx context.Context, o harness.Options) (harness.Result, error)
	// drainJobs, when set, replaces -jobs in drain runs: for a system too
	// slow to finish -jobs within the harness's settle timeout.
	drainJobs int
	// python: the system runs Python processes (see python.go).
	python bool
}

// pairs are the comparisons of the ratio table: ours against a peer on a
// like store.
var pairs = [][2]string{
	{"avtomatika-redis", "asynq"},
	{"avtomatika-redis", "asynq-tuned"},
	{"avtomatika-memory", "temporal"},
	{"avtomatika-memory", "temporal-tuned"},
	{"avtomatika-redis-py", "upstream"},
	{"avtomatika-redis", "upstream"},
	{"skeleton", "asynq-tuned"},
	{"avtomatika-redis", "skeleton"},
}

var modes = []string{"drain", "rate"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		workloads    = flag.String("workload", "one-task,fanout-10", "comma-separated workloads: one-task, fanout-10")
		systemsFlag  = flag.String("systems", "all", "comma-separated systems, or all: avtomatika-memory, avtomatika-redis, avtomatika-redis-py, asynq, asynq-tuned, temporal, temporal-tuned, upstream, skeleton (a floor: our protocol's HTTP exchanges and Redis round trips with nothing in them)")
		rounds       = flag.Int("rounds", 3, "rounds; each runs every system once in each mode")
		jobs         = flag.Int("jobs", 3000, "drain mode: jobs per run")
		rate         = flag.Float64("rate", 200, "rate mode: jobs per second, open loop")
		duration     = flag.Duration("duration", 5*time.Second, "rate mode: how long to send")
		workers      = flag.Int("workers", 4, "our SDK workers (peers get workers×concurrency handler slots)")
		concurrency  = flag.Int("concurrency", 32, "tasks at once per worker")
		clients      = flag.Int("clients", 32, "client goroutines creating jobs")
		redisURL     = flag.String("redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis: avtomatika-redis uses a fresh key prefix in this db")
		asynqDB      = flag.Int("asynq-db", 13, "Redis database for asynq, FLUSHDB'd before and after each run")
		upstreamDB   = flag.Int("upstream-db", 12, "Redis database for upstream's orchestrator, FLUSHDB'd before and after each run")
		pythonJobs   = flag.Int("python-jobs", 600, "drain mode: jobs per run of the systems with Python workers (0: -jobs)")
		temporalJobs = flag.Int("temporal-jobs", 600, "drain mode: jobs per Temporal run (0: -jobs); the test server finishes some 20 fanout-10 jobs/s here, too few for 3000 within the harness's one-minute settle timeout")
		markdown     = flag.String("markdown", "", "also write the tables as Markdown to this file")
		py           *pythons
	)
	flag.Parse()
	if *rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	wls := splitList(*workloads)
	for _, w := range wls {
		if w != "one-task" && w != "fanout-10" {
			return fmt.Errorf("unknown workload %q (one-task, fanout-10)", w)
		}
	}
	all := []system{
		avtomatikaSystem("avtomatika-memory", "memory", *redisURL),
		avtomatikaSystem("avtomatika-redis", "redis", *redisURL),
		asynqSystem("asynq", false, *redisURL, *asynqDB),
		asynqSystem("asynq-tuned", true, *redisURL, *asynqDB),
		temporalSystem("temporal", false),
		temporalSystem("temporal-tuned", true),
		avtomatikaPythonSystem("avtomatika-redis-py", *redisURL, &py),
		upstreamSystem("upstream", *redisURL, *upstreamDB, &py),
		skeletonSystem(*redisURL),
	}
	for i := range all {
		switch {
		case strings.HasPrefix(all[i].name, "temporal"):
			all[i].drainJobs = *temporalJobs
		case all[i].python:
			all[i].drainJobs = *pythonJobs
		}
	}
	systems := all
	if names := splitList(*systemsFlag); !(len(names) == 1 && names[0] == "all") {
		systems = nil
		for _, n := range names {
			i := slices.IndexFunc(all, func(s system) bool { return s.name == n })
			if i < 0 {
				return fmt.Errorf("unknown system %q", n)
			}
			systems = append(systems, all[i])
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if slices.ContainsFunc(systems, func(s system) bool { return s.python }) {
		var err error
		if py, err = preparePythons(ctx); err != nil {
			return fmt.Errorf("python systems: %w", err)
		}
		defer os.RemoveAll(py.logs)
	}
	base := harness.Options{Workers: *workers, Concurrency: *concurrency, Clients: *clients, RedisURL: *redisURL}
	results := map[key][]harness.Result{}
	errs := map[key][]string{}
	began := time.Now()
	for r := 1; r <= *rounds; r++ {
		for _, w := range wls {
			for _, s := range systems {
				for _, m := range modes {
					o := base
					o.Workload = w
					if m == "drain" {
						o.Jobs = *jobs
						if s.drainJobs > 0 {
							o.Jobs = s.drainJobs
						}
					} else {
						o.Rate, o.Duration = *rate, *duration
					}
					runtime.GC()
					k := key{w, s.name, m}
					t0 := time.Now()
					res, err := s.run(ctx, o)
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if err != nil {
						errs[k] = append(errs[k], err.Error())
						fmt.Fprintf(os.Stderr, "round %d  %-9s %-17s %-5s ERROR %v (%s)\n", r, w, s.name, m, err, time.Since(t0).Round(time.Millisecond))
						continue
					}
					res.Backend = s.name
					results[k] = append(results[k], res)
					fmt.Fprintf(os.Stderr, "round %d  %-9s %-17s %-5s jobs=%d failed=%d %7.1f jobs/s  p50=%s p99=%s max=%s (%s)\n",
						r, w, s.name, m, res.Jobs, res.Failed, res.Throughput, msStr(res.P50), msStr(res.P99), msStr(res.Max), time.Since(t0).Round(time.Millisecond))
				}
			}
		}
	}

	rep := report{
		workloads: wls, systems: systems, results: results, errs: errs,
		header: fmt.Sprintf("%s/%s, %d CPUs, %s; %d rounds, interleaved; drain: %d jobs (Temporal: %d, Python workers: %d), %d clients; rate: %.0f jobs/s for %s; workers %d×%d; took %s",
			runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *rounds, *jobs, cmp.Or(*temporalJobs, *jobs), cmp.Or(*pythonJobs, *jobs), *clients, *rate, *duration,
			*workers, *concurrency, time.Since(began).Round(time.Second)),
	}
	rep.write(os.Stdout, false)
	if *markdown != "" {
		f, err := os.Create(*markdown)
		if err != nil {
			return err
		}
		rep.write(f, true)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// avtomatikaSystem runs our orchestrator through harness.Run.
func avtomatikaSystem(name, backend, redisURL string) system {
	return system{name: name, run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		o.Backend, o.RedisURL = backend, redisURL
		return harness.Run(ctx, o)
	}}
}

type key struct{ workload, system, mode string }

type report struct {
	header    string
	workloads []string
	systems   []system
	results   map[key][]harness.Result
	errs      map[key][]string
}

// write prints the per-system table and the ratio table, as aligned text
// or as Markdown.
func (r report) write(w io.Writer, md bool) {
	t := &table{md: md, numeric: 2}
	t.row("workload", "system", "drain jobs/s", "drain p99 ms", "rate p50 ms", "rate p99 ms", "rate jobs/s", "Redis cmds/job", "Redis µs/job", "process µs/job", "failed")
	for _, wl := range r.workloads {
		for _, s := range r.systems {
			d, rt := r.results[key{wl, s.name, "drain"}], r.results[key{wl, s.name, "rate"}]
			failed := 0
			for _, x := range append(slices.Clone(d), rt...) {
				failed += x.Failed
			}
			fail := fmt.Sprint(failed)
			if n := len(r.errs[key{wl, s.name, "drain"}]) + len(r.errs[key{wl, s.name, "rate"}]); n > 0 {
				fail += fmt.Sprintf(" (+%d runs errored)", n)
			}
			t.row(wl, s.name,
				spread(d, throughput, jobsFormat(d)), spread(d, p99, "%.1f"),
				spread(rt, p50, "%.2f"), spread(rt, p99, "%.2f"), spread(rt, throughput, jobsFormat(rt)),
				redisFigure(d, redisCommands, "%.1f"), redisFigure(d, redisMicros, "%.0f"), spread(d, processMicros, "%.0f"), fail)
		}
	}
	const note = "Median over rounds, (min–max) in brackets. Drain p99 is mostly the backlog the clients built; " +
		"a rate run whose jobs/s falls short of the offered rate was saturated, and its latency is queueing. " +
		"Redis figures are per job of the drain runs: commands sent, and CPU time of Redis's main thread " +
		"(whose total bounds the jobs/s one Redis can carry); process µs/job is the CPU time of this process " +
		"(the system, its workers and the clients; Python processes are not counted) per job of the drain runs."
	if md {
		fmt.Fprintf(w, "%s\n\n%s\n\n", r.header, note)
	} else {
		fmt.Fprintf(w, "\n%s\n%s\n\n", r.header, note)
	}
	t.flush(w)

	rt := &table{md: md, numeric: 3}
	rt.row("workload", "ours", "peer", "throughput ours/peer", "rate p50 peer/ours", "rate p99 peer/ours")
	rows := 0
	for _, wl := range r.workloads {
		for _, p := range pairs {
			ours, peer := key{wl, p[0], "drain"}, key{wl, p[1], "drain"}
			thr := ratio(r.median(ours, throughput), r.median(peer, throughput))
			ours.mode, peer.mode = "rate", "rate"
			r50 := ratio(r.median(peer, p50), r.median(ours, p50))
			r99 := ratio(r.median(peer, p99), r.median(ours, p99))
			if thr == "" && r50 == "" && r99 == "" {
				continue
			}
			rt.row(wl, p[0], p[1], thr, r50, r99)
			rows++
		}
	}
	if rows > 0 {
		fmt.Fprintf(w, "\nRatios of the medians (above 1: better for Avtomatika).\n\n")
		rt.flush(w)
	}
	var errLines []string
	for _, wl := range r.workloads {
		for _, s := range r.systems {
			for _, m := range modes {
				for _, e := range r.errs[key{wl, s.name, m}] {
					errLines = append(errLines, fmt.Sprintf("- %s %s %s: %s", wl, s.name, m, e))
				}
			}
		}
	}
	if len(errLines) > 0 {
		fmt.Fprintf(w, "\nRuns that errored:\n\n%s\n", strings.Join(errLines, "\n"))
	}
}

// median is the median over rounds of f for k; 0 when k has no runs.
func (r report) median(k key, f func(harness.Result) float64) float64 {
	rs := r.results[k]
	if len(rs) == 0 {
		return 0
	}
	return mid(values(rs, f))
}

// mid is the median of sorted v.
func mid(v []float64) float64 {
	n := len(v)
	if n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[n/2]
}

func throughput(x harness.Result) float64 { return x.Throughput }

// jobsFormat formats jobs/s without decimals, or with one where a run
// finished fewer than 10 jobs/s.
func jobsFormat(rs []harness.Result) string {
	if len(rs) > 0 && values(rs, throughput)[0] < 10 {
		return "%.1f"
	}
	return "%.0f"
}
func redisCommands(x harness.Result) float64 { return x.RedisCommands }
func redisMicros(x harness.Result) float64   { return x.RedisMicros }
func processMicros(x harness.Result) float64 { return x.ProcessMicros }

// redisFigure is spread for the Redis cost of drain runs, "–" for systems
// that do not use Redis.
func redisFigure(rs []harness.Result, f func(harness.Result) float64, format string) string {
	if len(rs) == 0 || f(rs[0]) == 0 {
		return "–"
	}
	return spread(rs, f, format)
}
func p50(x harness.Result) float64 { return msf(x.P50) }
func p99(x harness.Result) float64 { return msf(x.P99) }

func values(rs []harness.Result, f func(harness.Result) float64) []float64 {
	v := make([]float64, len(rs))
	for i, x := range rs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v
}

// spread formats the median and, with more than one run, (min–max).
func spread(rs []harness.Result, f func(harness.Result) float64, format string) string {
	if len(rs) == 0 {
		return "–"
	}
	v := values(rs, f)
	s := fmt.Sprintf(format, mid(v))
	if len(v) > 1 {
		s += fmt.Sprintf(" ("+format+"–"+format+")", v[0], v[len(v)-1])
	}
	return s
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return ""
	}
	switch r := a / b; {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	default:
		return fmt.Sprintf("%.2g×", r)
	}
}

// table collects rows and prints them aligned, or as a Markdown table.
type table struct {
	md      bool
	numeric int // the first right-aligned column (Markdown)
	rows    [][]string
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) flush(w io.Writer) {
	width := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for n, r := range t.rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if t.md {
				b.WriteString("| " + c + pad + " ")
			} else {
				b.WriteString(c + pad + "  ")
			}
		}
		if t.md {
			b.WriteString("|")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 && t.md {
			b.Reset()
			for i := range r {
				dash := strings.Repeat("-", width[i])
				if i >= t.numeric {
					dash = dash[1:] + ":"
				}
				b.WriteString("| " + dash + " ")
			}
			fmt.Fprintln(w, b.String()+"|")
		}
	}
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msStr(d time.Duration) string { return fmt.Sprintf("%.2fms", msf(d)) }

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
