package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

var metricName = regexp.MustCompile(`avtomatika_[a-z_]+`)

// checkDashboardMetrics checks that every metric the Grafana dashboard
// queries exists in the orchestrator's exposition.
func checkDashboardMetrics(t *testing.T, api string) {
	t.Helper()
	raw, err := os.ReadFile("ops/grafana/dashboards/avtomatika-overview.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.Title != "Avtomatika Overview" {
		t.Fatalf("dashboard: %v %q", err, dash.Title)
	}
	resp, err := http.Get(api + "/_public/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	queried := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range metricName.FindAllString(target.Expr, -1) {
				queried++
				family := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && families[base] != nil {
						family = base
					}
				}
				if f := families[family]; f == nil || len(f.Metric) == 0 {
					t.Errorf("panel %q queries %s, which is not in the exposition", p.Title, name)
				}
			}
		}
	}
	if queried < 15 {
		t.Fatalf("the dashboard queries only %d metrics", queried)
	}
}

// scrapeWithPrometheus runs a real Prometheus against the orchestrator for a
// few scrape intervals and reads a series back through its HTTP API.
func scrapeWithPrometheus(t *testing.T, apiPort int) {
	prom := testenv.URL(t, testenv.PromVar)
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: avtomatika\n    metrics_path: /_public/metrics\n    static_configs:\n      - targets: [\"127.0.0.1:%d\"]\n", apiPort)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	}()
	query := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", port, `sum(avtomatika_jobs_created_total{blueprint="full_showcase"})`)
	var value float64
	testenv.WaitUntil(t, "a scraped series", 60*time.Second, func() bool {
		resp, err := http.Get(query)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		_, err = fmt.Sscan(s, &value)
		return err == nil && value > 0
	})
	if value < 31 {
		t.Fatalf("Prometheus reads %v full_showcase jobs created; the test created at least 31", value)
	}
}

// TestOpsFilesPassPromtool checks the shipped scrape configuration with
// promtool check config, and every query of the Grafana dashboard with
// promtool check rules (each as a recording rule), so that a typo in
// either shows here rather than in an empty panel.
func TestOpsFilesPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := filepath.Join(filepath.Dir(testenv.URL(t, testenv.PromVar)), "promtool")
	if out, err := exec.Command(promtool, "check", "config", "ops/prometheus.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check config ops/prometheus.yml: %v\n%s", err, out)
	}

	raw, err := os.ReadFile("ops/grafana/dashboards/avtomatika-overview.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			n++
			expr, _ := json.Marshal(target.Expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, expr)
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no queries")
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s\n%s", err, out, rules.String())
	}
}
