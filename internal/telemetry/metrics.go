// Package telemetry holds the orchestrator's Prometheus metrics: counters and
// histograms fed by engine events, HTTP request metrics, store operation
// latency, and gauges read from the store when scraped. Every metric is
// listed, with its labels, in the README.
package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

const ns = "avtomatika"

// Options choose how much the metrics tell about individual workers.
// /_public/metrics needs no token, so by default they tell nothing that
// names a worker, and no label takes more values than a fixed bound
// however many workers register.
type Options struct {
	// WorkerLabels (METRICS_WORKER_LABELS) gives avtomatika_worker_reputation
	// and avtomatika_worker_load one series per worker, labelled with its
	// id, for at most MaxWorkerLabels workers (the first in id order); the
	// others share the series worker="(other)". Off (the default), every
	// worker is in worker="(other)" and the exposition shows no worker id.
	WorkerLabels bool
	// MaxWorkerLabels (METRICS_WORKER_LABELS_MAX) bounds the per-worker
	// series when WorkerLabels is on (DefaultMaxWorkerLabels).
	MaxWorkerLabels int
}

// DefaultMaxWorkerLabels is the default bound on per-worker series.
const DefaultMaxWorkerLabels = 100

// OtherLabel is the label value that stands for the workers (or task types)
// past a bound. Worker ids and skill names cannot contain parentheses, so it
// never collides with one.
const OtherLabel = "(other)"

// Metrics is one orchestrator's metrics, in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	jobsCreated   *prometheus.CounterVec
	jobsEnded     *prometheus.CounterVec
	jobsRetried   *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
	dispatched    *prometheus.CounterVec
	waiting       *prometheus.CounterVec
	taskWait      *prometheus.HistogramVec
	taskRun       *prometheus.HistogramVec
	results       *prometheus.CounterVec
	retries       *prometheus.CounterVec
	timeouts      *prometheus.CounterVec
	lateResults   *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	schedulerRuns *prometheus.CounterVec
	workerEvents  *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	jobCosts      *prometheus.CounterVec

	costMu    sync.Mutex
	costNames map[string]bool // cost names with a series, at most maxCostNames
}

// maxCostNames bounds the cost names avtomatika_job_costs_total has series
// for: workers name their costs, so the names past it share "(other)".
const maxCostNames = 20

// New returns metrics whose gauges read st (queue depths, workers,
// reputations) at scrape time, configured by the first of opts (none: the
// defaults, no worker labels).
func New(st store.Store, opts ...Options) *Metrics {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return newMetrics(st, o)
}

func newMetrics(st store.Store, opts Options) *Metrics {
	if opts.MaxWorkerLabels <= 0 {
		opts.MaxWorkerLabels = DefaultMaxWorkerLabels
	}
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
		f(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
		f(h)
		return h
	}
	long := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
	short := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		reg:           reg,
		jobsCreated:   counter("jobs_created_total", "Jobs created, by blueprint.", "blueprint"),
		jobsEnded:     counter("jobs_ended_total", "Jobs that ended, by blueprint and final status (finished, failed, error, quarantined, cancelled).", "blueprint", "status"),
		jobsRetried:   counter("jobs_retried_total", "Failed or quarantined jobs run again (a retried job ends again), by blueprint.", "blueprint"),
		jobDuration:   histogram("job_duration_seconds", "Time from creation to end of jobs, by blueprint and final status.", long, "blueprint", "status"),
		dispatched:    counter("tasks_dispatched_total", "Tasks placed on a worker, by task type and strategy.", "type", "strategy"),
		waiting:       counter("tasks_unplaced_total", "Task placements that found no eligible worker (the task waits), by task type.", "type"),
		taskWait:      histogram("task_wait_seconds", "Time tasks waited in a queue before a worker took them, by task type.", long, "type"),
		taskRun:       histogram("task_run_seconds", "Time from pickup to result, by task type and result status.", long, "type", "status"),
		results:       counter("task_results_total", "Task results applied, by task type and status.", "type", "status"),
		retries:       counter("task_retries_total", "Task attempts scheduled again after a failure, by task type.", "type"),
		timeouts:      counter("task_timeouts_total", "Task timeouts, by kind (dispatch, execution, result).", "kind"),
		lateResults:   counter("task_results_ignored_total", "Results ignored (late, duplicate, foreign), by reason.", "reason"),
		webhooks:      counter("webhook_deliveries_total", "Webhook delivery attempts, by outcome (delivered, retrying, gave_up, superseded).", "outcome"),
		schedulerRuns: counter("scheduler_runs_total", "Jobs started by the scheduler, by schedule and outcome (started, failed).", "schedule", "outcome"),
		workerEvents:  counter("worker_events_total", "Worker lifecycle events (registered, offline).", "event"),
		httpRequests:  counter("http_requests_total", "HTTP requests, by route pattern, method and status code.", "route", "method", "code"),
		httpDuration:  histogram("http_request_duration_seconds", "HTTP request latency, by route pattern, method and status code (long polls included).", short, "route", "method", "code"),
		storeDuration: histogram("store_operation_duration_seconds", "Latency of store operations, by operation.", short, "operation"),
		storeErrors:   counter("store_operation_errors_total", "Store operations that failed (not found and conflicts excluded), by operation.", "operation"),
		jobCosts: counter("job_costs_total", "What jobs cost, as their task results reported it (every attempt), by client, blueprint and cost name "+
			"(at most 20 names, then \"(other)\"), added with each result.", "client", "blueprint", "cost"),
		costNames: map[string]bool{},
	}
	// Series of bounded label sets exist from the start (at 0), so that
	// dashboards and alerts see them before the first event.
	for _, k := range []string{"dispatch", "execution", "result"} {
		m.timeouts.WithLabelValues(k)
	}
	for _, o := range []string{"delivered", "retrying", "gave_up", "superseded"} {
		m.webhooks.WithLabelValues(o)
	}
	for _, e := range []string{"registered", "offline"} {
		m.workerEvents.WithLabelValues(e)
	}
	for _, r := range []string{"job_not_found", "worker_mismatch", "stale_task", "deadline_exceeded", "job_cancelled", "job_already_terminated", "duplicate_result"} {
		m.lateResults.WithLabelValues(r)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	maxWorkers := 0
	if opts.WorkerLabels {
		maxWorkers = opts.MaxWorkerLabels
	}
	f(&stateCollector{store: st, maxWorkers: maxWorkers, maxTypes: maxQueueTypes})
	return m
}

// Registry exposes the registry (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil, EnableOpenMetrics: false})
}

// Observe turns an engine event into metrics. It never blocks.
func (m *Metrics) Observe(ev engine.Event) {
	bp := ""
	if ev.Job != nil {
		bp = ev.Job.Blueprint
	}
	typ, _ := ev.Detail["type"].(string)
	switch ev.Type {
	case engine.EventJobCreated:
		m.jobsCreated.WithLabelValues(bp).Inc()
	case engine.EventJobEnded:
		status, _ := ev.Detail["status"].(string)
		m.jobsEnded.WithLabelValues(bp, status).Inc()
		if ev.Job != nil && ev.Job.FinishedAt != nil {
			m.jobDuration.WithLabelValues(bp, status).Observe(ev.Job.FinishedAt.Sub(ev.Job.CreatedAt).Seconds())
		}
	case engine.EventJobRetried:
		m.jobsRetried.WithLabelValues(bp).Inc()
	case engine.EventTaskDispatched:
		strategy, _ := ev.Detail["strategy"].(string)
		m.dispatched.WithLabelValues(typ, strategy).Inc()
	case engine.EventTaskWaiting:
		m.waiting.WithLabelValues(typ).Inc()
	case engine.EventTaskStarted:
		if s, ok := ev.Detail["queued_for"].(float64); ok {
			m.taskWait.WithLabelValues(typ).Observe(s)
		}
	case engine.EventTaskResult:
		status, _ := ev.Detail["status"].(string)
		m.results.WithLabelValues(typ, status).Inc()
		if s, ok := ev.Detail["ran_for"].(float64); ok {
			m.taskRun.WithLabelValues(typ, status).Observe(s)
		}
		// Counted with each result rather than at the job's end, which a
		// retried job reaches more than once.
		if costs, _ := ev.Detail["costs"].(map[string]float64); ev.Job != nil {
			for name, v := range costs {
				m.jobCosts.WithLabelValues(ev.Job.Client.Name, bp, m.costLabel(name)).Add(v)
			}
		}
	case engine.EventTaskRetry:
		m.retries.WithLabelValues(typ).Inc()
	case engine.EventTaskTimeout:
		kind, _ := ev.Detail["kind"].(string)
		m.timeouts.WithLabelValues(kind).Inc()
	case engine.EventLateResult:
		reason, _ := ev.Detail["reason"].(string)
		m.lateResults.WithLabelValues(reason).Inc()
	case engine.EventWebhookAttempt:
		outcome, _ := ev.Detail["outcome"].(string)
		m.webhooks.WithLabelValues(outcome).Inc()
	case engine.EventWorkerRegistered:
		m.workerEvents.WithLabelValues("registered").Inc()
	case engine.EventWorkerOffline:
		m.workerEvents.WithLabelValues("offline").Inc()
	}
}

// SchedulerRun counts a job started (or not) by the scheduler.
func (m *Metrics) SchedulerRun(schedule string, failed bool) {
	outcome := "started"
	if failed {
		outcome = "failed"
	}
	m.schedulerRuns.WithLabelValues(schedule, outcome).Inc()
}

// WrapHTTP counts requests and measures their latency by route pattern,
// method and status code, all bounded labels: the route is the pattern that
// matched (no job ids), unknown methods count as "other".
func (m *Metrics) WrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		} else if _, path, ok := strings.Cut(route, " "); ok {
			route = path
		}
		method, code := methodLabel(r.Method), strconv.Itoa(rec.code)
		m.httpRequests.WithLabelValues(route, method, code).Inc()
		m.httpDuration.WithLabelValues(route, method, code).Observe(time.Since(start).Seconds())
	})
}

// methodLabel bounds the method label to the standard methods a client
// sends; anything else (any token is a valid HTTP method) is "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the original writer
// (WebSocket upgrades, flushing).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observeStore records one store operation.
func (m *Metrics) observeStore(op string, start time.Time, err error) {
	m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !expected(err) {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// costLabel is the cost label of a cost name: the name, for the first
// maxCostNames names seen, else OtherLabel.
func (m *Metrics) costLabel(name string) string {
	m.costMu.Lock()
	defer m.costMu.Unlock()
	if m.costNames[name] {
		return name
	}
	if len(m.costNames) < maxCostNames && name != OtherLabel {
		m.costNames[name] = true
		return name
	}
	return OtherLabel
}
