// Package figures records the orchestrator's own figures for the web
// console's charts in the live store (store.Stats), so that every
// orchestrator of a deployment adds to the same ones and any of them shows
// the whole deployment, with no Prometheus: jobs created, finished and
// failed per minute, the time tasks wait in their queue before a worker
// picks them up, and each worker's reputation as it changes (the value
// after the latest change of each interval).
//
// A Recorder observes the engine events committed in its process (each
// event is observed by exactly one process) and adds them up in memory;
// Run writes the sums every FlushEvery, so that a busy orchestrator costs
// the store one write per minute and interval, not one per event. A crash
// loses at most the last interval's figures.
package figures

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Counter names (store.Stats).
const (
	Created   = "created"
	Finished  = "finished"
	Failed    = "failed" // failed, error or quarantined
	Cancelled = "cancelled"
	Started   = "started" // tasks picked up by a worker
	WaitMS    = "wait_ms" // their time in the queue, summed, in milliseconds
)

// FlushEvery is how often a Recorder writes what it gathered.
const FlushEvery = 2 * time.Second

// Reputation series: the newest ReputationSamples of a worker, kept
// ReputationTTL after its last change.
const (
	ReputationSamples = 500
	ReputationTTL     = 7 * 24 * time.Hour
)

// ReputationSeries names a worker's reputation series.
func ReputationSeries(workerID string) string { return "reputation:" + workerID }

// Recorder gathers figures from events; see the package documentation.
type Recorder struct {
	st  store.Stats
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	minutes map[time.Time]map[string]int64
	reps    map[string]store.Sample // worker → its latest reputation
}

// New returns a Recorder writing to st.
func New(st store.Stats, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{st: st, log: log, now: time.Now, minutes: map[time.Time]map[string]int64{}, reps: map[string]store.Sample{}}
}

// Observe adds an event to the figures. It never blocks on the store.
func (r *Recorder) Observe(ev engine.Event) {
	at := ev.Time
	if at.IsZero() {
		at = r.now()
	}
	switch ev.Type {
	case engine.EventJobCreated:
		r.add(at, map[string]int64{Created: 1})
	case engine.EventJobEnded:
		status, _ := ev.Detail["status"].(string)
		if status == "" && ev.Job != nil {
			status = string(ev.Job.Status)
		}
		switch protocol.JobStatus(status) {
		case protocol.StatusFinished:
			r.add(at, map[string]int64{Finished: 1})
		case protocol.StatusCancelled:
			r.add(at, map[string]int64{Cancelled: 1})
		default:
			r.add(at, map[string]int64{Failed: 1})
		}
	case engine.EventTaskStarted:
		if s, ok := ev.Detail["queued_for"].(float64); ok && s >= 0 {
			r.add(at, map[string]int64{Started: 1, WaitMS: int64(math.Round(s * 1000))})
		}
	case engine.EventReputation:
		if v, ok := ev.Detail["reputation"].(float64); ok && ev.WorkerID != "" {
			r.mu.Lock()
			r.reps[ev.WorkerID] = store.Sample{At: at, Value: v}
			r.mu.Unlock()
		}
	}
}

// add adds deltas to the minute of at.
func (r *Recorder) add(at time.Time, deltas map[string]int64) {
	m := at.UTC().Truncate(time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.minutes[m]
	if c == nil {
		c = map[string]int64{}
		r.minutes[m] = c
	}
	for k, d := range deltas {
		c[k] += d
	}
}

// Run writes the figures every FlushEvery until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.Flush(fctx)
			return
		case <-t.C:
			r.Flush(ctx)
		}
	}
}

// Flush writes what was gathered since the last Flush. What fails to be
// written is kept for the next one, unless it is older than the store keeps.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	minutes, reps := r.minutes, r.reps
	r.minutes, r.reps = map[time.Time]map[string]int64{}, map[string]store.Sample{}
	r.mu.Unlock()
	for m, c := range minutes {
		if err := r.st.AddStats(ctx, m, c); err != nil {
			r.log.Warn("figures: write counters", "minute", m, "error", err)
			if r.now().Sub(m) < store.StatsRetention {
				r.add(m, c)
			}
		}
	}
	for w, s := range reps {
		if err := r.st.AppendSample(ctx, ReputationSeries(w), s, ReputationSamples, ReputationTTL); err != nil {
			r.log.Warn("figures: write reputation", "worker_id", w, "error", err)
			r.mu.Lock()
			if _, newer := r.reps[w]; !newer {
				r.reps[w] = s
			}
			r.mu.Unlock()
		}
	}
}

// Minute is one minute of figures as the console charts them.
type Minute struct {
	At                        time.Time
	Created, Finished, Failed int64
	Started                   int64
	WaitMS                    float64 // mean wait of the tasks started; 0 when none
}

// LastHour reads the figures of the 60 minutes up to now (the current one
// included), one Minute each, oldest first, zeros where nothing happened.
func LastHour(ctx context.Context, st store.Stats, now time.Time) ([]Minute, error) {
	to := now.UTC().Truncate(time.Minute)
	from := to.Add(-59 * time.Minute)
	got, err := st.StatsSince(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]Minute, 0, 60)
	for m := from; !m.After(to); m = m.Add(time.Minute) {
		c := got[m]
		mi := Minute{At: m, Created: c[Created], Finished: c[Finished], Failed: c[Failed], Started: c[Started]}
		if mi.Started > 0 {
			mi.WaitMS = float64(c[WaitMS]) / float64(mi.Started)
		}
		out = append(out, mi)
	}
	return out, nil
}
