package telemetry

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

var (
	queueDepthDesc = prometheus.NewDesc(ns+"_task_queue_depth", "Tasks waiting in queues (assigned to a worker or pending), by task type.", []string{"type"}, nil)
	workersDesc    = prometheus.NewDesc(ns+"_workers", "Live workers, by reported status.", []string{"status"}, nil)
	reputationDesc = prometheus.NewDesc(ns+"_worker_reputation", "Reputation of each live worker, 0 to 1.", []string{"worker"}, nil)
	loadDesc       = prometheus.NewDesc(ns+"_worker_load", "Tasks queued for or running on each live worker.", []string{"worker"}, nil)
	storeUpDesc    = prometheus.NewDesc(ns+"_store_up", "1 when the store answered the last scrape, else 0.", nil, nil)
)

// stateCollector reads gauges from the store at scrape time, so that they
// are right whichever orchestrator of a deployment is scraped.
type stateCollector struct{ store store.Store }

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
	for _, w := range workers { // every offered skill has a series, 0 when idle
		for _, s := range w.Skills {
			if _, ok := depth[s.Name]; !ok {
				depth[s.Name] = 0
			}
		}
	}
	for t, n := range depth {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, n, t)
	}
	byStatus := map[string]float64{"idle": 0, "busy": 0, "full": 0, "draining": 0, "offline": 0}
	ids := make([]string, len(workers))
	for i, w := range workers {
		status := w.Status
		if status == "" {
			status = "idle"
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
	for _, id := range ids {
		rep, ok := reps[id]
		if !ok {
			rep = 1
		}
		ch <- prometheus.MustNewConstMetric(reputationDesc, prometheus.GaugeValue, rep, id)
		ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, float64(loads[id]), id)
	}
	return nil
}
