package console_test

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// fanBlueprint fans out two echo tasks, one that fails at once and one
// that takes ms, then joins them and ends.
func fanBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("fan").Endpoint("v1", "/jobs/fan")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.DispatchParallel([]blueprint.Task{
			{Type: "echo", Params: map[string]any{"fail": true}},
			{Type: "echo", Params: map[string]any{"ms": c.Input("ms")}},
		})
	}, blueprint.FanIn("join"))
	bp.Aggregator("join", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	bp.End("finished", nil)
	return bp
}

// runningFanOut serves fanBlueprint with cfg and a worker, starts a fan
// job as alice and polls its page in alice's browser until it shows one
// branch done and one left; it returns the server, the browser, the job's
// id and that page.
func runningFanOut(t *testing.T, cfg orchestrator.Config) (string, *browser, string, string) {
	t.Helper()
	base := serve(t, cfg, fanBlueprint())
	startWorker(t, base)
	id := createWith(t, base, aliceToken, "fan", map[string]any{"initial_data": map[string]any{"ms": 3000}})
	b := newBrowser(t, base)
	b.login(aliceToken)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, page := b.get("/console/jobs/" + id)
		if strings.Contains(page, `<b id="branches-done">1</b> done, <b id="branches-left">1</b> left`) {
			return base, b, id, page
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running fan-out's page never showed 1 done, 1 left: %.4000s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var branchRowRE = regexp.MustCompile(`<tr data-branch="[^"]+">(.*?)</tr>`)

// TestJobPageBranches: a job's page lists its fan-out's branches with
// their worker, status, attempts and error, and while the fan-out runs how
// many branches are done and left.
func TestJobPageBranches(t *testing.T) {
	cfg := baseConfig()
	cfg.HistoryURI, cfg.GlobalWorkerToken = "sqlite:"+filepath.Join(t.TempDir(), "history.db"), "worker-token"
	base, b, id, _ := runningFanOut(t, cfg)
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	status, _, page := b.get("/console/jobs/" + id)
	if status != http.StatusOK {
		t.Fatalf("job page: %d", status)
	}
	if strings.Contains(page, "branches-left") {
		t.Error("the finished job's page still counts branches left")
	}
	rows := branchRowRE.FindAllStringSubmatch(page, -1)
	if len(rows) != 2 {
		t.Fatalf("%d branch rows, want 2: %.4000s", len(rows), page)
	}
	var failed, succeeded int
	for _, r := range rows {
		row := r[1]
		if !strings.Contains(row, `<td class="wide">echo</td><td>echo-worker</td>`) || !strings.Contains(row, "<td>1</td>") {
			t.Errorf("branch row %q lacks its type, worker or single attempt", row)
		}
		switch {
		case strings.Contains(row, "<td>failure</td>") && strings.Contains(row, "PERMANENT_ERROR: the test asked for a failure"):
			failed++
		case strings.Contains(row, "<td>success</td>") && strings.Contains(row, `<td class="error"></td>`):
			succeeded++
		}
	}
	if failed != 1 || succeeded != 1 {
		t.Errorf("branches: %d failed with the error, %d succeeded; want 1 and 1: %q", failed, succeeded, rows)
	}
}

// TestJobPageBranchesWithoutHistory: without an audit trail the running
// fan-out's branches come from the live job: the ended one with its
// result, the other still outstanding.
func TestJobPageBranchesWithoutHistory(t *testing.T) {
	cfg := baseConfig()
	cfg.GlobalWorkerToken = "worker-token"
	base, _, id, page := runningFanOut(t, cfg)
	rows := branchRowRE.FindAllStringSubmatch(page, -1)
	if len(rows) != 2 || !strings.Contains(rows[0][1], "<td>failure</td>") || !strings.Contains(rows[0][1], "PERMANENT_ERROR: the test asked for a failure") ||
		!strings.Contains(rows[1][1], "<td>echo-worker</td>") || !strings.Contains(rows[1][1], "<td>1</td>") {
		t.Fatalf("branch rows %q, want the failed one with its error, then the outstanding one", rows)
	}
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
}

// nestBlueprint runs leaf as a child job twice, then ends; leaf ends at
// once.
func nestBlueprints() []*blueprint.Blueprint {
	leaf := blueprint.New("leaf")
	leaf.Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	leaf.End("finished", nil)
	nest := blueprint.New("nest").Endpoint("v1", "/jobs/nest")
	nest.Start("start", func(c *blueprint.Context) error {
		return c.RunBlueprint("leaf", map[string]any{"n": 1})
	}, blueprint.On("success", "again"), blueprint.On("failure", "finished"))
	nest.State("again", func(c *blueprint.Context) error {
		return c.RunBlueprint("leaf", map[string]any{"n": 2})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "finished"))
	nest.End("finished", nil)
	return []*blueprint.Blueprint{leaf, nest}
}

var childLinkRE = regexp.MustCompile(`<li><a class="mono" href="/console/jobs/([0-9a-f-]{36})">`)

// TestFinishedParentLinksItsChildren: once its sub-jobs have ended (and
// child_job_id is cleared), a parent's page still links each of them, and
// each child links back to the parent.
func TestFinishedParentLinksItsChildren(t *testing.T) {
	base := serve(t, baseConfig(), nestBlueprints()...)
	id := createWith(t, base, aliceToken, "nest", map[string]any{})
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	b := newBrowser(t, base)
	b.login(aliceToken)
	_, _, page := b.get("/console/jobs/" + id)
	links := childLinkRE.FindAllStringSubmatch(page, -1)
	if len(links) != 2 || links[0][1] == links[1][1] {
		t.Fatalf("the finished parent links %d children, want 2: %.3000s", len(links), page)
	}
	for _, l := range links {
		status, _, child := b.get("/console/jobs/" + l[1])
		if status != http.StatusOK || !strings.Contains(child, `<dt>Parent job</dt><dd><a class="mono" href="/console/jobs/`+id+`">`) {
			t.Errorf("child %s: %d, or it does not link its parent", l[1], status)
		}
	}
	if !strings.Contains(page, "<small>finished</small>") {
		t.Error("the parent's page does not say how its children ended")
	}
}
