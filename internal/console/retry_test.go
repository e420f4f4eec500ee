package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// strictBlueprint sends one task and routes no failure: a failed task
// quarantines the job.
func strictBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("strict").Endpoint("v1", "/jobs/strict")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "echo", Params: echoParams(c)})
	}, blueprint.On("success", "finished"))
	bp.End("finished", nil)
	return bp
}

// createWith creates a job through the API and returns its id.
func createWith(t testing.TB, base, token, endpoint string, body map[string]any) string {
	t.Helper()
	status, raw := apiCall(t, base, "POST", "/api/v1/jobs/"+endpoint, token, body)
	if status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, raw)
	}
	var r protocol.CreateJobResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r.JobID
}

// waitPage reads a console page until it contains want.
func waitPage(t *testing.T, b *browser, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, page := b.get(path)
		if strings.Contains(page, want) {
			return page
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q: %.3000s", path, want, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bulkConfirmed posts a bulk action's form twice: the confirmation must
// count the jobs ids and leave them as they are (status), the confirmed
// post must report done.
func bulkConfirmed(t *testing.T, b *browser, action string, form url.Values, token string, ids []string, status protocol.JobStatus, done string) {
	t.Helper()
	n := strconv.Itoa(len(ids))
	code, _, body := b.post(action, form)
	if code != http.StatusOK || !strings.Contains(body, `<output id="bulk-count">`+n+`</output>`) || !strings.Contains(body, " "+n+" jobs</button>") {
		t.Fatalf("confirmation: %d %.1500s", code, body)
	}
	for _, id := range ids {
		if got := jobStatus(t, b.base, token, id); got != status {
			t.Fatalf("the confirmation changed %s (%s)", id, got)
		}
	}
	form.Set("confirm", n)
	if code, _, body := b.post(action, form); code != http.StatusOK || !strings.Contains(body, done) {
		t.Fatalf("confirmed: %d %.800s", code, body)
	}
}

func TestRetryFromJobPageMemory(t *testing.T) {
	cfg := baseConfig()
	cfg.HistoryURI = "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	testRetryFromJobPage(t, cfg)
}

func TestRetryFromJobPageRedis(t *testing.T) {
	cfg := redisConfig(t, "avto-console-retry")
	cfg.HistoryURI = "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	testRetryFromJobPage(t, cfg)
}

// testRetryFromJobPage: a failed job's page offers Retry, which only its
// owner can use and only with the CSRF token; the job runs again from the
// state whose task failed and finishes, its path and timeline say so, and
// its webhook delivery log shows both ends' deliveries with their status
// codes. A job that has not failed is refused with the reason.
func testRetryFromJobPage(t *testing.T, cfg orchestrator.Config) {
	var calls atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable) // the first delivery is retried
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	cfg.GlobalWorkerToken, cfg.WebhookAllowedHosts = "worker-token", []string{"127.0.0.1/32"}
	base := serve(t, cfg, workBlueprint())
	startWorker(t, base)
	id := createWith(t, base, aliceToken, "work", map[string]any{"initial_data": map[string]any{"fail_once": true}, "webhook_url": receiver.URL + "/hook"})
	waitStatus(t, base, aliceToken, id, protocol.StatusFailed)

	b := newBrowser(t, base)
	b.login(aliceToken)
	page := waitPage(t, b, "/console/jobs/"+id, "<td>204</td>")
	for _, want := range []string{`action="/console/jobs/` + id + `/retry"`, "Retry from the failed state", "Webhook deliveries",
		"<td>job_failed</td><td>503</td><td>retrying</td>", "<td>job_failed</td><td>204</td><td>delivered</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the failed job's page lacks %q", want)
		}
	}

	bob := newBrowser(t, base)
	bob.login(bobToken)
	if status, _, _ := bob.post("/console/jobs/"+id+"/retry", url.Values{"csrf": {bob.csrf()}}); status != http.StatusNotFound {
		t.Fatalf("bob retries alice's job: %d", status)
	}
	if status, _, _ := b.post("/console/jobs/"+id+"/retry", url.Values{}); status != http.StatusForbidden {
		t.Fatalf("a retry without the CSRF token: %d", status)
	}
	if got := jobStatus(t, base, aliceToken, id); got != protocol.StatusFailed {
		t.Fatalf("a refused retry changed the job: %s", got)
	}

	status, h, body := b.post("/console/jobs/"+id+"/retry", url.Values{"csrf": {b.csrf()}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/jobs/"+id {
		t.Fatalf("retry: %d %q %.300s", status, h.Get("Location"), body)
	}
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	page = waitPage(t, b, "/console/jobs/"+id, "<td>job_finished</td>")
	for _, want := range []string{"job_retried", "by=client alice in the console", "from_state=failed", "from_status=failed",
		"Path taken: start → failed → start → finished"} {
		if !strings.Contains(page, want) {
			t.Errorf("the retried job's page lacks %q", want)
		}
	}
	if strings.Contains(page, "Retry from the failed state") {
		t.Error("a finished job's page offers Retry")
	}
	// History's summary of the job follows it (the lists of ended jobs
	// read history).
	if _, _, list := b.get("/console/jobs?status=failed"); strings.Contains(list, id) {
		t.Error("the retried job is still listed as failed")
	}
	if _, _, list := b.get("/console/jobs?status=finished"); !strings.Contains(list, id) {
		t.Error("the retried job is not listed as finished")
	}
	status, _, body = b.post("/console/jobs/"+id+"/retry", url.Values{"csrf": {b.csrf()}})
	if status != http.StatusConflict || !strings.Contains(body, "is finished; only failed and quarantined jobs are retried") {
		t.Fatalf("retry of a finished job: %d %.800s", status, body)
	}
}

// TestBulkRetryAndQuarantine: bulk retry counts the viewer's failed and
// quarantined jobs of the filter before touching any, then retries them;
// another client's are untouched. The quarantine page lists quarantined
// jobs with their error and retries one.
func TestBulkRetryAndQuarantine(t *testing.T) {
	cfg := baseConfig()
	cfg.GlobalWorkerToken = "worker-token"
	base := serve(t, cfg, workBlueprint(), strictBlueprint())
	startWorker(t, base)
	once := map[string]any{"initial_data": map[string]any{"fail_once": true}}
	var alices []string
	for range 2 {
		alices = append(alices, createWith(t, base, aliceToken, "work", once))
	}
	quarantined := createWith(t, base, aliceToken, "strict", once)
	bobs := createWith(t, base, bobToken, "work", once)
	for _, id := range alices {
		waitStatus(t, base, aliceToken, id, protocol.StatusFailed)
	}
	waitStatus(t, base, aliceToken, quarantined, protocol.StatusQuarantined)
	waitStatus(t, base, bobToken, bobs, protocol.StatusFailed)

	b := newBrowser(t, base)
	b.login(aliceToken)
	_, _, list := b.get("/console/jobs?status=failed")
	if !strings.Contains(list, `action="/console/jobs/retry"`) {
		t.Fatal("the failed jobs' list offers no bulk retry")
	}
	if _, _, list := b.get("/console/jobs?status=finished"); strings.Contains(list, `action="/console/jobs/retry"`) {
		t.Error("the finished jobs' list offers a bulk retry")
	}
	form := url.Values{"csrf": {b.csrf()}, "status": {"failed"}, "blueprint": {"work"}}
	bulkConfirmed(t, b, "/console/jobs/retry", form, aliceToken, alices, protocol.StatusFailed, "2 jobs retried (0 could not be).")
	for _, id := range alices {
		waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	}
	if got := jobStatus(t, base, bobToken, bobs); got != protocol.StatusFailed {
		t.Fatalf("alice's bulk retry reached bob's job: %s", got)
	}

	page := waitPage(t, b, "/console/quarantine", quarantined)
	for _, want := range []string{"the test asked for one failure", `action="/console/jobs/` + quarantined + `/retry"`, `aria-current="page">Quarantine`} {
		if !strings.Contains(page, want) {
			t.Errorf("the quarantine page lacks %q", want)
		}
	}
	if strings.Contains(page, alices[0]) {
		t.Error("the quarantine page lists a job that is not quarantined")
	}
	// The page follows the jobs' live stream and reloads its panel alone.
	if !strings.Contains(page, `data-live="/console/live" data-refresh="/console/quarantine?fragment=panel"`) {
		t.Error("the quarantine page is not live")
	}
	if status, _, panel := b.get("/console/quarantine?fragment=panel"); status != http.StatusOK ||
		!strings.Contains(panel, quarantined) || strings.Contains(panel, "<h1>") {
		t.Errorf("the quarantine panel: %d %q", status, panel)
	}
	bob := newBrowser(t, base)
	bob.login(bobToken)
	if _, _, page := bob.get("/console/quarantine"); strings.Contains(page, quarantined) {
		t.Error("bob's quarantine page lists alice's job")
	}
	if status, _, _ := b.post("/console/jobs/"+quarantined+"/retry", url.Values{"csrf": {b.csrf()}}); status != http.StatusSeeOther {
		t.Fatalf("retry from the quarantine page: %d", status)
	}
	waitStatus(t, base, aliceToken, quarantined, protocol.StatusFinished)
	if _, _, page := b.get("/console/quarantine"); strings.Contains(page, quarantined) || !strings.Contains(page, "No quarantined jobs.") {
		t.Error("the retried job is still listed in quarantine")
	}
	// A filter that selects no failed job touches none.
	if status, _, body := b.post("/console/jobs/retry", url.Values{"csrf": {b.csrf()}, "status": {"finished"}}); status != http.StatusOK ||
		!strings.Contains(body, `<output id="bulk-count">0</output>`) {
		t.Fatalf("bulk retry of finished jobs: %d %.800s", status, body)
	}
}
