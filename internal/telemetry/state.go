package telemetry

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

var (
	queueDepthDesc = prometheus.NewDesc(ns+"_task_queue_depth", "Tasks waiting in queues (assigned to a worker or pending), by task type; types past a bound are summed in type=\"(other)\".", []string{"type"}, nil)
	workersDesc    = prometheus.NewDesc(ns+"_workers", "Live workers, by reported status (statuses other than idle, busy, full, draining and offline count as other).", []string{"status"}, nil)
	reputationDesc = prometheus.NewDesc(ns+"_worker_reputation", "Reputation of live workers, 0 to 1: per worker id with METRICS_WORKER_LABELS, else (and past its bound) the lowest of the workers in worker=\"(other)\".", []string{"worker"}, nil)
	loadDesc       = prometheus.NewDesc(ns+"_worker_load", "Tasks queued for or running on live workers: per worker id with METRICS_WORKER_LABELS, else (and past its bound) the sum over the workers in worker=\"(other)\".", []string{"worker"}, nil)
	storeUpDesc    = prometheus.NewDesc(ns+"_store_up", "1 when the store answered the last scrape, else 0.", nil, nil)
)

// maxQueueTypes bounds the type label of avtomatika_task_queue_depth: skill
// names come from worker registrations, so without a bound every worker
// that registers a new name would add a series.
const maxQueueTypes = 500

// workerStatuses are the statuses the workers gauge has a series for; a
// worker reporting another (heartbeats carry any string) counts as other.
var workerStatuses = []string{"idle", "busy", "full", "draining", "offline"}

// stateCollector reads gauges from the store at scrape time, so that they
// are right whichever orchestrator of a deployment is scraped. maxWorkers
// workers (0: none) get series of their own; maxTypes bounds the task
// types of the queue depth.
type stateCollector struct {
	store      store.Store
	maxWorkers int
	maxTypes   int
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDepthDesc, workersDesc, reputationDesc, loadDesc, storeUpDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	up := 1.0
	if err := c.collect(ctx, ch); err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
}

func (c *stateCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	lengths, err := c.store.QueueLengths(ctx)
	if err != nil {
		return err
	}
	depth := map[string]float64{}
	for q, n := range lengths {
		if t, ok := strings.CutPrefix(q, store.PendingQueue("")); ok {
			depth[t] += float64(n)
			continue
		}
		tasks, err := c.store.PeekTasks(ctx, q, 10000)
		if err != nil {
			return err
		}
		for _, qt := range tasks {
			depth[qt.Run.Spec.Type]++
		}
	}
	workers, err := c.store.ListWorkers(ctx)
	if err != nil {
		return err
	}
	depth = boundTypes(depth, c.maxTypes)
	for _, w := range workers { // offered skills have a series, 0 when idle, while the bound allows
		for _, s := range w.Skills {
			if _, ok := depth[s.Name]; !ok && len(depth) < c.maxTypes {
				depth[s.Name] = 0
			}
		}
	}
	for t, n := range depth {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, n, t)
	}
	byStatus := map[string]float64{"other": 0}
	for _, s := range workerStatuses {
		byStatus[s] = 0
	}
	ids := make([]string, len(workers))
	for i, w := range workers {
		status := w.Status
		if status == "" {
			status = "idle"
		}
		if _, known := byStatus[status]; !known {
			status = "other"
		}
		byStatus[status]++
		ids[i] = w.ID
	}
	for s, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, n, s)
	}
	if len(ids) == 0 {
		return nil
	}
	reps, err := c.store.Reputations(ctx, ids...)
	if err != nil {
		return err
	}
	loads, err := c.store.Loads(ctx)
	if err != nil {
		return err
	}
	// The first maxWorkers ids, in order, have series of their own; the
	// rest share "(other)": their summed load and their lowest reputation.
	slices.Sort(ids)
	otherRep, otherLoad, others := 1.0, 0.0, 0
	for i, id := range ids {
		rep, ok := reps[id]
		if !ok {
			rep = 1
		}
		if i < c.maxWorkers {
			ch <- prometheus.MustNewConstMetric(reputationDesc, prometheus.GaugeValue, rep, id)
			ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, float64(loads[id]), id)
			continue
		}
		otherRep, otherLoad, others = min(otherRep, rep), otherLoad+float64(loads[id]), others+1
	}
	if others > 0 {
		ch <- prometheus.MustNewConstMetric(reputationDesc, prometheus.GaugeValue, otherRep, OtherLabel)
		ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, otherLoad, OtherLabel)
	}
	return nil
}

// boundTypes keeps at most limit task types: the deepest queues (by name
// among equals) keep their own series, the rest are summed in "(other)".
func boundTypes(depth map[string]float64, limit int) map[string]float64 {
	if len(depth) <= limit {
		return depth
	}
	types := make([]string, 0, len(depth))
	for t := range depth {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b string) int {
		if c := cmp.Compare(depth[b], depth[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	out := make(map[string]float64, limit)
	for i, t := range types {
		if i < limit-1 {
			out[t] = depth[t]
		} else {
			out[OtherLabel] += depth[t]
		}
	}
	return out
}
