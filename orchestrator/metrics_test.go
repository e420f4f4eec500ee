package orchestrator_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
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
	o, err := orchestrator.New(orchestrator.Config{Logger: quiet(), GlobalWorkerToken: "fleet-token", PollTimeout: time.Second,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String()
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
	prom := testenv.URL(t, testenv.PromVar)
	promtool := filepath.Join(filepath.Dir(prom), "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
