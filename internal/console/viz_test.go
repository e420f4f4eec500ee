package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// nodeRE finds a graph node's element with its classes and state name.
var nodeRE = regexp.MustCompile(`<g id="node\d+" class="node([^"]*)">\s*<title>([^<]*)</title>`)

// graphNodes maps the states of the job page's graph to their extra
// classes ("current", "visited" or "").
func graphNodes(t *testing.T, page string) map[string]string {
	t.Helper()
	i := strings.Index(page, `<figure id="graph"`)
	if i < 0 {
		t.Fatalf("the job page has no graph: %.3000s", page)
	}
	fig := page[i : i+strings.Index(page[i:], "</figure>")]
	if !strings.Contains(fig, "<svg") || strings.Contains(fig, "<?xml") || strings.Contains(fig, "<!--") ||
		strings.Contains(fig, "style=") || strings.Contains(fig, "<script") {
		t.Fatalf("the graph is no clean inline SVG (no preamble, inline styles or scripts): %.2000s", fig)
	}
	out := map[string]string{}
	for _, m := range nodeRE.FindAllStringSubmatch(fig, -1) {
		out[m[2]] = strings.TrimSpace(m[1])
	}
	return out
}

// TestJobPageGraph: the job page draws the blueprint as SVG with the path
// taken (from the audit trail: a history database) and the current state
// highlighted, and follows the job.
func TestJobPageGraph(t *testing.T) {
	cfg := baseConfig()
	cfg.HistoryURI = "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	base := serve(t, cfg)
	id := createJob(t, base, aliceToken)
	waitStatus(t, base, aliceToken, id, protocol.StatusWaitingForHuman)
	b := newBrowser(t, base)
	b.login(aliceToken)
	status, _, page := b.get("/console/jobs/" + id)
	if status != http.StatusOK {
		t.Fatalf("job page: %d", status)
	}
	nodes := graphNodes(t, page)
	if nodes["start"] != "current" || nodes["finished"] != "" || nodes["rejected"] != "" {
		t.Fatalf("waiting: nodes %v, want start current", nodes)
	}
	if status, body := apiCall(t, base, "POST", "/api/v1/jobs/"+id+"/approve", aliceToken, map[string]string{"decision": "approved"}); status != http.StatusOK {
		t.Fatalf("approve: %d %s", status, body)
	}
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	_, _, page = b.get("/console/jobs/" + id + "?fragment=panel")
	nodes = graphNodes(t, page)
	if nodes["start"] != "visited" || nodes["finished"] != "current" || nodes["rejected"] != "" {
		t.Fatalf("finished: nodes %v, want start visited, finished current", nodes)
	}
	if n := strings.Count(page, `class="edge taken"`); n != 2 { // the start arrow and start -> finished
		t.Fatalf("%d edges marked taken, want 2: %.3000s", n, page)
	}
}

func TestChartsAndLiveListsMemory(t *testing.T) {
	cfg := baseConfig()
	cfg.GlobalWorkerToken = "worker-token"
	base := serve(t, cfg, workBlueprint())
	testChartsAndLiveLists(t, base, base)
}

// TestChartsAndLiveListsRedis: one orchestrator's console shows the
// figures and workers of another on the same Redis.
func TestChartsAndLiveListsRedis(t *testing.T) {
	cfg := redisConfig(t, "avto-console-viz")
	cfg.GlobalWorkerToken = "worker-token"
	first, second := serve(t, cfg, workBlueprint()), serve(t, cfg, workBlueprint())
	testChartsAndLiveLists(t, first, second)
}

// testChartsAndLiveLists: the workers list hears of a worker that
// registers (with the orchestrator at apiURL), and after a job that
// finishes and one that fails the queues page's charts and the worker's
// reputation history on consoleURL show them.
func testChartsAndLiveLists(t *testing.T, consoleURL, apiURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := newBrowser(t, consoleURL)
	admin.login(adminToken)
	alice := newBrowser(t, consoleURL)
	alice.login(aliceToken)
	for path, want := range map[string]int{"live?topic=workers:admin": http.StatusForbidden, "live?topic=queues": http.StatusForbidden, "live?topic=schedules": http.StatusForbidden, "live?topic=nosuch": http.StatusBadRequest} {
		if status, _, _ := alice.get("/console/" + path); status != want {
			t.Errorf("alice GET %s: %d, want %d", path, status, want)
		}
	}
	if status, _, _ := alice.get("/console/workers/echo-worker"); status != http.StatusNotFound {
		t.Errorf("a worker not registered: %d, want 404", status)
	}

	workers := openStream(t, ctx, admin, "live?topic=workers:admin")
	defer workers.Close()
	queues := openStream(t, ctx, admin, "live?topic=queues")
	defer queues.Close()
	time.Sleep(300 * time.Millisecond) // the watchers read their first state
	startWorker(t, apiURL)
	if line := readTopic(t, workers); !strings.Contains(line, `"event_type":"workers:admin"`) {
		t.Fatalf("workers stream: %s", line)
	}
	if _, _, page := admin.get("/console/workers?fragment=panel"); !strings.Contains(page, `<a href="/console/workers/echo-worker">echo-worker</a>`) {
		t.Fatalf("the workers panel lacks the new worker: %.2000s", page)
	}

	for _, fail := range []bool{false, true} {
		status, body := apiCall(t, apiURL, "POST", "/api/v1/jobs/work", aliceToken, map[string]any{"initial_data": map[string]any{"fail": fail}})
		if status != http.StatusAccepted {
			t.Fatalf("create: %d %s", status, body)
		}
		var r protocol.CreateJobResponse
		_ = json.Unmarshal(body, &r)
		want := protocol.StatusFinished
		if fail {
			want = protocol.StatusFailed
		}
		waitStatus(t, apiURL, aliceToken, r.JobID, want)
	}
	if line := readTopic(t, queues); !strings.Contains(line, `"event_type":"queues"`) {
		t.Fatalf("queues stream: %s", line)
	}
	// The figures reach the store within figures.FlushEvery.
	var jobs, latency chartData
	for {
		_, _, page := admin.get("/console/queues")
		jobs, latency = chartOf(t, page, "jobs-chart"), chartOf(t, page, "latency-chart")
		if jobs.sum(0) == 2 && jobs.sum(1) == 1 && jobs.sum(2) == 1 && latency.count(0) >= 1 {
			if !strings.Contains(page, "2 jobs created, 1 finished, 1 failed;\n  2 tasks picked up, after") {
				t.Fatalf("the hour's totals: %.3000s", page)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the queues page's charts: jobs %+v latency %+v", jobs, latency)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(jobs.X) != 60 || jobs.Series[0].Label != "created" || jobs.Series[2].Label != "failed" {
		t.Fatalf("jobs chart: %+v", jobs)
	}
	// The worker's reputation fell: its history records it.
	for {
		_, _, page := alice.get("/console/workers/echo-worker")
		rep := chartOf(t, page, "reputation-chart")
		vals := rep.Series[0].Values
		if len(vals) >= 2 && vals[len(vals)-1] != nil && *vals[len(vals)-1] < 1 {
			if !strings.Contains(page, "<td>1.000</td>") && !strings.Contains(page, "<td>0.") {
				t.Fatalf("the samples table: %.3000s", page)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the worker's reputation chart: %+v\n%.3000s", rep, page)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chartData is a page's data-chart attribute.
type chartData struct {
	X      []int64
	Series []struct {
		Label  string
		Values []*float64
	}
}

func (c chartData) sum(i int) float64 {
	var s float64
	for _, v := range c.Series[i].Values {
		if v != nil {
			s += *v
		}
	}
	return s
}

func (c chartData) count(i int) int {
	n := 0
	for _, v := range c.Series[i].Values {
		if v != nil {
			n++
		}
	}
	return n
}

func chartOf(t *testing.T, page, id string) chartData {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `" data-chart="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no chart %s on the page: %.3000s", id, page)
	}
	var c chartData
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &c); err != nil {
		t.Fatalf("chart %s: %v: %s", id, err, m[1])
	}
	return c
}

// readTopic returns the next change a live list's stream sends.
func readTopic(t *testing.T, body io.Reader) string {
	t.Helper()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return line
		}
	}
	t.Fatalf("the stream ended without a change: %v", sc.Err())
	return ""
}

// TestWorkersTopicPerAudience: a task of bob's that starts moves the
// operators' workers topic (tasks in progress, loads, the waiting queue)
// but not alice's, whose page shows none of bob's activity.
func TestWorkersTopicPerAudience(t *testing.T) {
	cfg := baseConfig()
	cfg.GlobalWorkerToken = "worker-token"
	base := serve(t, cfg, workBlueprint())
	startWorker(t, base)
	admin := newBrowser(t, base)
	admin.login(adminToken)
	alice := newBrowser(t, base)
	alice.login(aliceToken)
	if page := waitPage(t, alice, "/console/workers", `data-worker="echo-worker"`); !strings.Contains(page, `data-live="/console/live?topic=workers"`) {
		t.Fatalf("alice's workers page does not follow the clients' topic: %.2000s", page)
	}
	_, _, page := admin.get("/console/workers")
	m := regexp.MustCompile(`data-live="/console/(live\?topic=workers[^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the operator's workers page does not follow the operators' topic: %.2000s", page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ops := openStream(t, ctx, admin, html.UnescapeString(m[1])) // as the page's script opens it
	defer ops.Close()
	alices := openStream(t, ctx, alice, "live?topic=workers")
	defer alices.Close()
	aliceLines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(alices)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				aliceLines <- line
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the watchers read their first state
	createWith(t, base, bobToken, "work", map[string]any{"initial_data": map[string]any{"ms": 7000}})
	if line := readTopic(t, ops); !strings.Contains(line, `"event_type":"workers:admin"`) {
		t.Fatalf("operators' workers stream: %s", line)
	}
	// Alice's watcher reads the list at least once more while bob's task
	// runs (every 2 s).
	select {
	case line := <-aliceLines:
		t.Fatalf("alice's workers stream told of bob's task: %s", line)
	case <-time.After(2500 * time.Millisecond):
	}
}
