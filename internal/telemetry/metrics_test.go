package telemetry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// series returns the series of a family whose labels are exactly want.
func series(t *testing.T, m *Metrics, family string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
	next:
		for _, s := range f.Metric {
			if len(s.Label) != len(want) {
				continue
			}
			for _, lp := range s.Label {
				if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
					continue next
				}
			}
			return s
		}
	}
	return nil
}

func TestHTTPMetricsHaveBoundedLabels(t *testing.T) {
	t.Parallel()
	m := New(memory.New(memory.Options{}), Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok")) // an implicit 200
	})
	h := m.WrapHTTP(mux)
	for _, req := range []struct{ method, path string }{
		{"GET", "/things/1"}, {"GET", "/things/2"}, {"GET", "/things/missing"},
		{"BREW", "/things/1"}, {"X-CUSTOM-42", "/things/1"}, // methods nobody declared
		{"GET", "/job/0b1e6c7d-5a37-4d4b-9a56-5c1f0e1d2a3b"}, // no route: no id in a label
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	for _, tc := range []struct {
		labels map[string]string
		want   uint64
	}{
		{map[string]string{"route": "/things/{id}", "method": "GET", "code": "200"}, 2},
		{map[string]string{"route": "/things/{id}", "method": "GET", "code": "404"}, 1},
		{map[string]string{"route": "unmatched", "method": "other", "code": "405"}, 2},
		{map[string]string{"route": "unmatched", "method": "GET", "code": "404"}, 1},
	} {
		c := series(t, m, "avtomatika_http_requests_total", tc.labels)
		if c == nil || uint64(c.GetCounter().GetValue()) != tc.want {
			t.Errorf("http_requests_total%v = %v, want %d", tc.labels, c, tc.want)
		}
		d := series(t, m, "avtomatika_http_request_duration_seconds", tc.labels)
		if d == nil || d.GetHistogram().GetSampleCount() != tc.want {
			t.Errorf("http_request_duration_seconds%v = %v, want %d observations", tc.labels, d, tc.want)
		}
	}
	families, _ := m.Registry().Gather()
	for _, f := range families {
		for _, s := range f.Metric {
			for _, lp := range s.Label {
				if lp.GetName() == "method" && lp.GetValue() != "GET" && lp.GetValue() != "other" {
					t.Errorf("%s has method label %q", f.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"GET": "GET", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE", "HEAD": "HEAD", "OPTIONS": "OPTIONS",
		"get": "other", "CONNECT": "other", "TRACE": "other", "PROPFIND": "other", "": "other",
	} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// What a job cost is added with each result, by client, blueprint and cost
// name; cost names past the bound share "(other)". A job's end adds
// nothing: a retried job ends twice.
func TestJobCosts(t *testing.T) {
	m := New(memory.New(memory.Options{}), Options{})
	end := func(client, bp string, costs map[string]float64) {
		job := &store.Job{Blueprint: bp, Client: store.Client{Name: client}, Costs: costs}
		m.Observe(engine.Event{Type: engine.EventTaskResult, Detail: map[string]any{"status": "success", "type": "work", "costs": costs}, Job: job})
		m.Observe(engine.Event{Type: engine.EventJobEnded, Detail: map[string]any{"status": "finished"}, Job: job})
		m.Observe(engine.Event{Type: engine.EventJobRetried, Job: job})
		m.Observe(engine.Event{Type: engine.EventJobEnded, Detail: map[string]any{"status": "finished"}, Job: job})
	}
	end("acme", "render", map[string]float64{"execution_time_seconds": 1.5, "gpu_seconds": 2})
	end("acme", "render", map[string]float64{"execution_time_seconds": 0.5})
	end("other", "render", map[string]float64{"execution_time_seconds": 7})
	if s := series(t, m, "avtomatika_jobs_retried_total", map[string]string{"blueprint": "render"}); s == nil || s.GetCounter().GetValue() != 3 {
		t.Errorf("jobs retried: %v, want 3", s)
	}
	for _, tc := range []struct {
		client, cost string
		want         float64
	}{{"acme", "execution_time_seconds", 2}, {"acme", "gpu_seconds", 2}, {"other", "execution_time_seconds", 7}} {
		s := series(t, m, "avtomatika_job_costs_total", map[string]string{"client": tc.client, "blueprint": "render", "cost": tc.cost})
		if s == nil || s.GetCounter().GetValue() != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.client, tc.cost, s, tc.want)
		}
	}
	many := map[string]float64{}
	for i := range 2 * maxCostNames {
		many[fmt.Sprintf("c%02d", i)] = 1
	}
	end("acme", "render", many)
	s := series(t, m, "avtomatika_job_costs_total", map[string]string{"client": "acme", "blueprint": "render", "cost": OtherLabel})
	// Two names already have series: 18 more fit, the other 22 share one.
	if s == nil || s.GetCounter().GetValue() != float64(2*maxCostNames-(maxCostNames-2)) {
		t.Fatalf("(other): %v", s)
	}
}
