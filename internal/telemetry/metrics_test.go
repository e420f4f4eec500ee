package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"

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
	for in, want := range map[string]string{
		"GET": "GET", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE", "HEAD": "HEAD", "OPTIONS": "OPTIONS",
		"get": "other", "CONNECT": "other", "TRACE": "other", "PROPFIND": "other", "": "other",
	} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
