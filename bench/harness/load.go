package harness

import (
	"context"
	"fmt"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Submit creates one job in the system under test and returns its id.
type Submit func(ctx context.Context) (string, error)

// Ends collects when jobs ended, as the system under test reports them.
// It is safe for concurrent use.
type Ends struct {
	at     sync.Map // job id → endRecord
	count  atomic.Int64
	signal chan struct{}
}

type endRecord struct {
	at time.Time
	ok bool
}

// NewEnds returns an empty Ends.
func NewEnds() *Ends { return &Ends{signal: make(chan struct{}, 1)} }

// Ended records that a job ended at at; ok is false for a failed job.
func (e *Ends) Ended(id string, at time.Time, ok bool) {
	if _, dup := e.at.LoadOrStore(id, endRecord{at: at, ok: ok}); dup {
		return
	}
	e.count.Add(1)
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

// Drive sends jobs through submit as o says, waits until every one has
// ended (at most o.SettleTimeout after the last send) and measures: drain
// mode times each job from its send, rate mode from its intended send time,
// so that queueing in front of a slow system is not hidden (no coordinated
// omission). o.Warmup jobs run first and are not measured. Every system
// compared is driven by this same code.
func Drive(ctx context.Context, o Options, submit Submit, ends *Ends) (Result, error) {
	o.defaults()
	res := Result{Workload: o.Workload, Backend: o.Backend, Mode: "drain", Offered: o.Rate}
	if o.Rate > 0 {
		res.Mode = "rate"
	}
	if o.Warmup > 0 {
		warm := o
		warm.Rate, warm.Jobs, warm.Warmup, warm.BeforeMeasure = 0, o.Warmup, -1, nil
		if _, err := Drive(ctx, warm, submit, ends); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	if o.BeforeMeasure != nil {
		o.BeforeMeasure()
	}
	cpu0, rt0 := processCPU(), readRuntime()
	base := ends.count.Load() // jobs ended before: the warm-up's
	var sent []sentJob
	var mu sync.Mutex
	record := func(id string, at time.Time) {
		mu.Lock()
		sent = append(sent, sentJob{id: id, at: at})
		mu.Unlock()
	}
	start := time.Now()
	var submitErr atomic.Value
	if o.Rate > 0 {
		rateArrivals(ctx, submit, o, start, record, &submitErr)
	} else {
		drain(ctx, submit, o, record, &submitErr)
	}
	if err, _ := submitErr.Load().(error); err != nil {
		return res, fmt.Errorf("create job: %w", err)
	}
	deadline := time.After(o.SettleTimeout)
wait:
	for int(ends.count.Load()-base) < len(sent) {
		select {
		case <-ends.signal:
		case <-deadline:
			if o.CountUnended {
				break wait // the jobs without an end count as failed below
			}
			return res, fmt.Errorf("%d of %d jobs ended within %s after the last creation", ends.count.Load()-base, len(sent), o.SettleTimeout)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	var lat []time.Duration
	var last time.Time
	for _, s := range sent {
		v, ok := ends.at.Load(s.id)
		if !ok || !v.(endRecord).ok {
			res.Failed++
			continue
		}
		e := v.(endRecord)
		lat = append(lat, e.at.Sub(s.at))
		if e.at.After(last) {
			last = e.at
		}
	}
	res.Jobs = len(lat)
	if len(sent) > 0 {
		cpu := processCPU() - cpu0
		res.ProcessMicros = float64(cpu.Microseconds()) / float64(len(sent))
		rt := readRuntime()
		res.AllocKB = float64(rt.allocBytes-rt0.allocBytes) / 1024 / float64(len(sent))
		if cpu > 0 {
			res.GCShare = (rt.gcSeconds - rt0.gcSeconds) / cpu.Seconds()
		}
	}
	res.Elapsed = last.Sub(start)
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Jobs) / res.Elapsed.Seconds()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if n := len(lat); n > 0 {
		res.P50, res.P95, res.P99, res.Max = lat[n*50/100], lat[min(n*95/100, n-1)], lat[min(n*99/100, n-1)], lat[n-1]
	}
	return res, nil
}

type sentJob struct {
	id string
	at time.Time // send time (drain) or intended send time (rate)
}

// drain creates jobs with o.Clients goroutines as fast as they go: o.Jobs
// of them, or for o.Duration when o.Jobs is 0.
func drain(ctx context.Context, submit Submit, o Options, record func(string, time.Time), submitErr *atomic.Value) {
	var next atomic.Int64
	until := time.Now().Add(o.Duration)
	more := func() bool {
		if o.Jobs > 0 {
			return next.Add(1) <= int64(o.Jobs)
		}
		return time.Now().Before(until)
	}
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Go(func() {
			for more() {
				at := time.Now()
				id, err := submit(ctx)
				if err != nil {
					submitErr.CompareAndSwap(nil, err)
					return
				}
				record(id, at)
			}
		})
	}
	wg.Wait()
}

// rateArrivals sends jobs at o.Rate per second for o.Duration: arrival i is
// due at start+i/rate whatever happened before (open loop).
func rateArrivals(ctx context.Context, submit Submit, o Options, start time.Time, record func(string, time.Time), submitErr *atomic.Value) {
	total := int(o.Rate * o.Duration.Seconds())
	due := make(chan time.Time, total)
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Go(func() {
			for at := range due {
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				id, err := submit(ctx)
				if err != nil {
					submitErr.CompareAndSwap(nil, err)
					continue
				}
				record(id, at)
			}
		})
	}
	for i := range total {
		due <- start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
	}
	close(due)
	wg.Wait()
}

// runtimeFigures are the Go runtime's running totals that Drive reports
// per job.
type runtimeFigures struct {
	allocBytes uint64  // heap allocated since the process started
	gcSeconds  float64 // CPU time the garbage collector took, an estimate
}

func readRuntime() runtimeFigures {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(samples)
	var f runtimeFigures
	if samples[0].Value.Kind() == metrics.KindUint64 {
		f.allocBytes = samples[0].Value.Uint64()
	}
	if samples[1].Value.Kind() == metrics.KindFloat64 {
		f.gcSeconds = samples[1].Value.Float64()
	}
	return f
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
