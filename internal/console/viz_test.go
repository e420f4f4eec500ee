package console_test

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
