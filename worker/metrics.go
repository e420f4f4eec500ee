package worker

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// metrics are the worker's own Prometheus metrics, served at GET /metrics
// on the health server.
type metrics struct {
	reg      *prometheus.Registry
	tasks    *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(running func() float64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "avtomatika_worker", Name: "tasks_total",
			Help: "Tasks run, by skill and result status."}, []string{"skill", "status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "avtomatika_worker", Name: "task_failures_total",
			Help: "Failed tasks, by skill and error code."}, []string{"skill", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "avtomatika_worker", Name: "task_duration_seconds",
			Help: "Time handlers took, by skill.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}, []string{"skill"}),
	}
	reg.MustRegister(m.tasks, m.failures, m.duration, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "avtomatika_worker", Name: "tasks_running", Help: "Tasks running now."}, running))
	return m
}

func (m *metrics) observe(skill string, res protocol.TaskResult, took time.Duration) {
	status := res.Status
	if status == "" {
		status = protocol.TaskSuccess
	}
	m.tasks.WithLabelValues(skill, status).Inc()
	m.duration.WithLabelValues(skill).Observe(took.Seconds())
	if res.Error != nil {
		m.failures.WithLabelValues(skill, res.Error.Code).Inc()
	}
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
