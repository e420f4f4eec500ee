package orchestrator_test

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func scrape(t *testing.T, url string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url + "/_public/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return body, families
}

// value returns the value of the series of family with exactly labels.
func value(families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return 0
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func TestMetricsMoveWithJobs(t *testing.T) {
	t.Parallel()
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), GlobalWorkerToken: "fleet-token", PollTimeout: time.Second,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}}, pipeline())
	ctx := context.Background()
	_, before := scrape(t, url)

	c, _ := client.New(url, "acme-token")
	// Two jobs wait for approval (no workers needed); one is cancelled.
	var ids []string
	for range 2 {
		id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Cancel(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Job(ctx, "no-such-job"); err == nil {
		t.Fatal("expected a 404")
	}
	body, after := scrape(t, url)
	for _, tc := range []struct {
		family string
		labels map[string]string
		delta  float64
	}{
		{"avtomatika_jobs_created_total", map[string]string{"blueprint": "pipeline"}, 2},
		{"avtomatika_jobs_ended_total", map[string]string{"blueprint": "pipeline", "status": "cancelled"}, 1},
		{"avtomatika_job_duration_seconds", map[string]string{"blueprint": "pipeline", "status": "cancelled"}, 1},
		{"avtomatika_tasks_unplaced_total", map[string]string{"type": "hold"}, 2},
		{"avtomatika_task_queue_depth", map[string]string{"type": "hold"}, 1},
		{"avtomatika_http_requests_total", map[string]string{"route": "/api/v1/jobs/pipeline", "method": "POST", "code": "202"}, 2},
		{"avtomatika_http_requests_total", map[string]string{"route": "/api/v1/jobs/{id}", "method": "GET", "code": "404"}, 1},
		{"avtomatika_store_operation_duration_seconds", map[string]string{"operation": "create_job"}, 2},
	} {
		got := value(after, tc.family, tc.labels) - value(before, tc.family, tc.labels)
		if got != tc.delta {
			t.Errorf("%s%v moved by %v, want %v", tc.family, tc.labels, got, tc.delta)
		}
	}
	if value(after, "avtomatika_store_up", nil) != 1 {
		t.Error("avtomatika_store_up is not 1")
	}
	for name := range after {
		for _, m := range after[name].Metric {
			for _, lp := range m.Label {
				if lp.GetValue() == ids[0] || lp.GetValue() == ids[1] {
					t.Fatalf("%s has a job id in its labels", name)
				}
			}
		}
	}

	// promtool lints the exposition.
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// total sums the series of family whose labels include labels (a
// histogram counts its observations).
func total(families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return 0
	}
	sum := 0.0
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			if !slices.ContainsFunc(m.Label, func(lp *dto.LabelPair) bool { return lp.GetName() == k && lp.GetValue() == v }) {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetricsFollowTasks runs a real SDK worker through a transient failure
// and its retry, a dispatch timeout, a webhook and a schedule, and checks
// that each metric moved by what happened.
func TestMetricsFollowTasks(t *testing.T) {
	t.Parallel()
	schedules := filepath.Join(t.TempDir(), "schedules.toml")
	if err := os.WriteFile(schedules, []byte("[tick_every_second]\nblueprint = \"tick\"\ninterval_seconds = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hooks := newHookReceiver(t, 0)
	_, url := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second, SchedulesFile: schedules, WebhookAllowedHosts: []string{"127.0.0.1/32"},
		RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond,
		Clients:             []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
		MetricsWorkerLabels: true, // per-worker series (off by default: /_public/metrics needs no token)
	}, taskBlueprints()...)
	ctx := context.Background()
	c, _ := client.New(url, "acme-token")
	_, before := scrape(t, url)
	if total(before, "avtomatika_workers", nil) != 0 || total(before, "avtomatika_worker_reputation", nil) != 0 {
		t.Fatal("workers before any registered")
	}

	startTaskWorker(t, url, "w1", c)
	flaky, err := c.CreateJob(ctx, "/jobs/flaky", nil, client.WithWebhook(hooks.url))
	if err != nil {
		t.Fatal(err)
	}
	stranded, err := c.CreateJob(ctx, "/jobs/stranded", nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]protocol.JobStatus{flaky: protocol.StatusFinished, stranded: protocol.StatusFailed} {
		if j, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond)); err != nil || j.Status != want {
			t.Fatalf("job %s: %+v %v, want %s", id, j, err, want)
		}
	}
	testenv.WaitUntil(t, "the webhook", 10*time.Second, func() bool { return len(hooks.received()) == 1 })
	runs := map[string]string{"schedule": "tick_every_second", "outcome": "started"}
	var body []byte
	var after map[string]*dto.MetricFamily
	// The webhook's counter moves after the receiver answered, the
	// scheduler's once a second.
	testenv.WaitUntil(t, "a scheduled run and the webhook delivery counted", 10*time.Second, func() bool {
		body, after = scrape(t, url)
		return total(after, "avtomatika_scheduler_runs_total", runs) > total(before, "avtomatika_scheduler_runs_total", runs) &&
			total(after, "avtomatika_webhook_deliveries_total", map[string]string{"outcome": "delivered"}) == 1
	})

	for _, tc := range []struct {
		family string
		labels map[string]string
		delta  float64
	}{
		{"avtomatika_tasks_dispatched_total", map[string]string{"type": "flaky"}, 2}, // the first attempt and the retry
		{"avtomatika_task_results_total", map[string]string{"type": "flaky", "status": "failure"}, 1},
		{"avtomatika_task_results_total", map[string]string{"type": "flaky", "status": "success"}, 1},
		{"avtomatika_task_retries_total", map[string]string{"type": "flaky"}, 1},
		{"avtomatika_task_wait_seconds", map[string]string{"type": "flaky"}, 2},
		{"avtomatika_task_run_seconds", map[string]string{"type": "flaky", "status": "failure"}, 1},
		{"avtomatika_task_run_seconds", map[string]string{"type": "flaky", "status": "success"}, 1},
		{"avtomatika_tasks_unplaced_total", map[string]string{"type": "nobody"}, 1},
		{"avtomatika_task_timeouts_total", map[string]string{"kind": "dispatch"}, 1},
		{"avtomatika_task_timeouts_total", map[string]string{"kind": "execution"}, 0},
		{"avtomatika_jobs_ended_total", map[string]string{"blueprint": "flaky", "status": "finished"}, 1},
		{"avtomatika_jobs_ended_total", map[string]string{"blueprint": "stranded", "status": "failed"}, 1},
		{"avtomatika_webhook_deliveries_total", map[string]string{"outcome": "delivered"}, 1},
		{"avtomatika_webhook_deliveries_total", map[string]string{"outcome": "retrying"}, 0},
		{"avtomatika_worker_events_total", map[string]string{"event": "registered"}, 1},
		{"avtomatika_workers", nil, 1},
		{"avtomatika_http_request_duration_seconds", map[string]string{"route": "/api/v1/jobs/flaky", "method": "POST", "code": "202"}, 1},
	} {
		if got := total(after, tc.family, tc.labels) - total(before, tc.family, tc.labels); got != tc.delta {
			t.Errorf("%s%v moved by %v, want %v", tc.family, tc.labels, got, tc.delta)
		}
	}
	// One transient failure that w1 itself then recovered from (charged
	// only when another worker completes the task: not here) and one
	// success (+0.01, capped at 1) from a fresh 1.
	if rep := total(after, "avtomatika_worker_reputation", map[string]string{"worker": "w1"}); math.Abs(rep-1) > 1e-9 {
		t.Errorf("reputation of w1 is %v, want 1", rep)
	}
	if got := total(after, "avtomatika_jobs_created_total", map[string]string{"blueprint": "tick"}); got < 1 {
		t.Errorf("scheduled jobs created: %v", got)
	}
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// promtool is the promtool next to the test environment's Prometheus.
func promtool(t *testing.T) string {
	return filepath.Join(filepath.Dir(testenv.URL(t, testenv.PromVar)), "promtool")
}
