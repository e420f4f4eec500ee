package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// reviewBlueprint waits for a human decision, then ends.
func reviewBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("review").Endpoint("v1", "/jobs/review")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("ship it?")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected"))
	bp.End("finished", nil)
	bp.End("rejected", nil)
	return bp
}

func baseConfig() orchestrator.Config {
	return orchestrator.Config{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdminToken: adminToken,
		Clients:    []orchestrator.Client{{Name: "alice", Token: aliceToken}, {Name: "bob", Token: bobToken}},
	}
}

// serve runs an orchestrator on a loopback port until the test ends and
// returns its base URL.
func serve(t testing.TB, cfg orchestrator.Config, more ...*blueprint.Blueprint) string {
	t.Helper()
	base, stop := start(t, cfg, more...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return base
}

// start runs an orchestrator on a loopback port; stop stops it (as SIGINT
// would: Serve's shutdown), closes it and returns what Serve returned.
func start(t testing.TB, cfg orchestrator.Config, more ...*blueprint.Blueprint) (base string, stop func() error) {
	t.Helper()
	o, err := orchestrator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(append(more, reviewBlueprint())...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- o.Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	return "http://" + ln.Addr().String(), func() error {
		once.Do(func() {
			cancel()
			serveErr = <-served
			_ = o.Close(context.Background())
		})
		return serveErr
	}
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (int, http.Header, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (b *browser) get(path string) (int, http.Header, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) (int, http.Header, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func (b *browser) login(token string) {
	b.t.Helper()
	status, h, body := b.post("/console/login", url.Values{"token": {token}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/jobs" {
		b.t.Fatalf("login: %d %s %.300s", status, h.Get("Location"), body)
	}
}

var csrfRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

// csrf reads the session's CSRF token from a page.
func (b *browser) csrf() string {
	b.t.Helper()
	_, _, body := b.get("/console/jobs")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on the jobs page: %.500s", body)
	}
	return m[1]
}

// api calls the client API.
func apiCall(t testing.TB, base, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set(protocol.HeaderClientToken, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func createJob(t testing.TB, base, token string) string {
	t.Helper()
	return createWith(t, base, token, "review", map[string]any{"initial_data": map[string]any{"n": 1}})
}

func jobStatus(t *testing.T, base, token, id string) protocol.JobStatus {
	t.Helper()
	status, body := apiCall(t, base, "GET", "/api/v1/jobs/"+id, token, nil)
	if status != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, status, body)
	}
	var j protocol.Job
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j.Status
}

// waitStatus polls the API until the job has the status (or the test's
// deadline passes: a failure, not a timing assertion).
func waitStatus(t *testing.T, base, token, id string, want protocol.JobStatus) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := jobStatus(t, base, token, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoginAndRedirects(t *testing.T) {
	base := serve(t, baseConfig())
	b := newBrowser(t, base)
	if status, h, _ := b.get("/"); status != http.StatusFound || h.Get("Location") != "/console/" {
		t.Fatalf("GET /: %d %q, want a redirect to /console/", status, h.Get("Location"))
	}
	status, h, _ := b.get("/console/jobs?status=running")
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=") {
		t.Fatalf("anonymous jobs page: %d %q, want the login form", status, h.Get("Location"))
	}
	if status, _, body := b.get("/console/login"); status != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("login page: %d %.300s", status, body)
	}
	if status, h, body := b.post("/console/login", url.Values{"token": {"wrong"}}); status != http.StatusUnauthorized ||
		!strings.Contains(body, "Unknown token") || h.Get("Set-Cookie") != "" {
		t.Fatalf("wrong token: %d %q %.300s", status, h.Get("Set-Cookie"), body)
	}
	// The worker token is no console login.
	status, h, _ = b.post("/console/login", url.Values{"token": {aliceToken}, "next": {"/console/jobs?status=running"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/jobs?status=running" {
		t.Fatalf("login: %d %q", status, h.Get("Location"))
	}
	ck := h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	status, h, body := b.get("/console/jobs")
	if status != http.StatusOK || !strings.Contains(body, "client <b>alice</b>") {
		t.Fatalf("jobs page after login: %d %.500s", status, body)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, aliceToken) {
		t.Error("the page shows the token")
	}
	// A destination outside the console is not followed.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/api/v1/jobs"} {
		_, h, _ := newBrowser(t, base).post("/console/login", url.Values{"token": {aliceToken}, "next": {next}})
		if h.Get("Location") != "/console/jobs" {
			t.Errorf("next=%q: redirected to %q", next, h.Get("Location"))
		}
	}
	// Logging out needs the CSRF token, and ends the session.
	if status, _, _ := b.post("/console/logout", nil); status != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", status)
	}
	if status, _, _ := b.post("/console/logout", url.Values{"csrf": {b.csrf()}}); status != http.StatusSeeOther {
		t.Fatalf("logout: %d", status)
	}
	if status, _, _ := b.get("/console/jobs"); status != http.StatusSeeOther {
		t.Fatalf("jobs page after logout: %d", status)
	}
	// Static files, htmx among them, need no session.
	if status, h, body := b.get("/console/static/htmx/htmx.min.js"); status != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "javascript") || len(body) < 10000 {
		t.Fatalf("htmx: %d %s %d bytes", status, h.Get("Content-Type"), len(body))
	}
	for _, p := range []string{"/console/static/", "/console/static/htmx/", "/console/static/nothing.js"} {
		if status, _, _ := b.get(p); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
}

func TestClientSeesOnlyOwnJobs(t *testing.T) {
	base := serve(t, baseConfig())
	aliceJob, bobJob := createJob(t, base, aliceToken), createJob(t, base, bobToken)
	alice := newBrowser(t, base)
	alice.login(aliceToken)
	_, _, list := alice.get("/console/jobs")
	if !strings.Contains(list, aliceJob) || strings.Contains(list, bobJob) {
		t.Fatalf("alice's list: has her job %v, has bob's %v", strings.Contains(list, aliceJob), strings.Contains(list, bobJob))
	}
	if status, _, body := alice.get("/console/jobs/" + aliceJob); status != http.StatusOK || !strings.Contains(body, "waiting_for_human") || !strings.Contains(body, "ship it?") {
		t.Fatalf("alice's job: %d %.500s", status, body)
	}
	// Bob's job is not found, exactly like one that does not exist.
	for _, id := range []string{bobJob, "00000000-0000-0000-0000-000000000000"} {
		status, _, body := alice.get("/console/jobs/" + id)
		if status != http.StatusNotFound || !strings.Contains(body, "Not found") || strings.Contains(body, "review") && strings.Contains(body, "ship it?") {
			t.Fatalf("alice opens %s: %d %.300s", id, status, body)
		}
		if status, _, _ := alice.get("/console/jobs/" + id + "/live"); status != http.StatusNotFound {
			t.Fatalf("alice streams %s: %d", id, status)
		}
		if status, _, _ := alice.post("/console/jobs/"+id+"/cancel", url.Values{"csrf": {alice.csrf()}}); status != http.StatusNotFound {
			t.Fatalf("alice cancels %s: %d", id, status)
		}
	}
	if got := jobStatus(t, base, bobToken, bobJob); got != protocol.StatusWaitingForHuman {
		t.Fatalf("bob's job after alice's attempt: %s", got)
	}
	// The admin sees both.
	admin := newBrowser(t, base)
	admin.login(adminToken)
	_, _, list = admin.get("/console/jobs")
	if !strings.Contains(list, aliceJob) || !strings.Contains(list, bobJob) {
		t.Fatal("the admin's list lacks a job")
	}
	if status, _, _ := admin.get("/console/jobs/" + bobJob); status != http.StatusOK {
		t.Fatalf("admin opens bob's job: %d", status)
	}
	// Operators' pages are the admin's only.
	for _, p := range []string{"/console/queues", "/console/schedules"} {
		if status, _, _ := alice.get(p); status != http.StatusForbidden {
			t.Errorf("alice opens %s: %d", p, status)
		}
		if status, _, _ := admin.get(p); status != http.StatusOK {
			t.Errorf("admin opens %s: %d", p, status)
		}
	}
	if status, _, body := alice.get("/console/workers"); status != http.StatusOK || !strings.Contains(body, "No worker") {
		t.Errorf("workers page: %d", status)
	}
}

func TestActionsNeedCSRFToken(t *testing.T) {
	base := serve(t, baseConfig())
	id := createJob(t, base, aliceToken)
	b := newBrowser(t, base)
	b.login(aliceToken)
	token := b.csrf()
	refused := []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no token", url.Values{"decision": {"approved"}}, nil},
		{"wrong token", url.Values{"decision": {"approved"}, "csrf": {"x" + token}}, nil},
		{"another session's token", url.Values{"decision": {"approved"}, "csrf": {func() string {
			o := newBrowser(t, base)
			o.login(bobToken)
			return o.csrf()
		}()}}, nil},
		{"cross-site", url.Values{"decision": {"approved"}, "csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", url.Values{"decision": {"approved"}, "csrf": {token}}, []string{"Origin", "https://evil.example"}},
	}
	for _, tc := range refused {
		for _, action := range []string{"approve", "cancel"} {
			status, _, _ := b.post("/console/jobs/"+id+"/"+action, tc.form, tc.header...)
			if status != http.StatusForbidden {
				t.Errorf("%s %s: %d, want 403", action, tc.name, status)
			}
		}
		if status, _, _ := b.post("/console/jobs/cancel", tc.form, tc.header...); status != http.StatusForbidden {
			t.Errorf("bulk cancel %s: %d, want 403", tc.name, status)
		}
	}
	if got := jobStatus(t, base, aliceToken, id); got != protocol.StatusWaitingForHuman {
		t.Fatalf("after refused actions the job is %s", got)
	}
	// The header works as well as the form field.
	if status, h, body := b.post("/console/jobs/"+id+"/approve", url.Values{"decision": {"approved"}}, "X-CSRF-Token", token); status != http.StatusSeeOther ||
		h.Get("Location") != "/console/jobs/"+id {
		t.Fatalf("approve: %d %q %.300s", status, h.Get("Location"), body)
	}
	waitStatus(t, base, aliceToken, id, protocol.StatusFinished)
	if status, _, body := b.post("/console/jobs/"+id+"/approve", url.Values{"decision": {"approved"}, "csrf": {token}}); status != http.StatusConflict {
		t.Fatalf("approve a finished job: %d %.200s", status, body)
	}
}

func TestApproveRejectAndCancel(t *testing.T) {
	base := serve(t, baseConfig())
	b := newBrowser(t, base)
	b.login(aliceToken)
	token := b.csrf()
	rejected, cancelled := createJob(t, base, aliceToken), createJob(t, base, aliceToken)
	if status, _, _ := b.post("/console/jobs/"+rejected+"/approve", url.Values{"decision": {"maybe"}, "csrf": {token}}); status != http.StatusBadRequest {
		t.Fatalf("unknown decision: %d", status)
	}
	if status, _, _ := b.post("/console/jobs/"+rejected+"/approve", url.Values{"decision": {"rejected"}, "csrf": {token}}); status != http.StatusSeeOther {
		t.Fatalf("reject: %d", status)
	}
	waitStatus(t, base, aliceToken, rejected, protocol.StatusFailed)
	if status, _, _ := b.post("/console/jobs/"+cancelled+"/cancel", url.Values{"csrf": {token}}); status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", status)
	}
	waitStatus(t, base, aliceToken, cancelled, protocol.StatusCancelled)
	_, _, page := b.get("/console/jobs/" + cancelled)
	if strings.Contains(page, "Cancel job") || !strings.Contains(page, "cancelled") {
		t.Fatalf("the cancelled job's page: %.800s", page)
	}
}

func TestBulkCancelByFilter(t *testing.T) {
	base := serve(t, baseConfig())
	var alices []string
	for range 3 {
		alices = append(alices, createJob(t, base, aliceToken))
	}
	bobs := createJob(t, base, bobToken)
	b := newBrowser(t, base)
	b.login(aliceToken)
	form := url.Values{"csrf": {b.csrf()}, "status": {"waiting_for_human"}, "blueprint": {"review"}}
	bulkConfirmed(t, b, "/console/jobs/cancel", form, aliceToken, alices, protocol.StatusWaitingForHuman, "3 jobs cancelled")
	for _, id := range alices {
		waitStatus(t, base, aliceToken, id, protocol.StatusCancelled)
	}
	if got := jobStatus(t, base, bobToken, bobs); got != protocol.StatusWaitingForHuman {
		t.Fatalf("alice's bulk cancel reached bob's job: %s", got)
	}
	if status, _, _ := b.post("/console/jobs/cancel", url.Values{"csrf": {b.csrf()}, "status": {"nonsense"}}); status != http.StatusBadRequest {
		t.Fatalf("unknown status: %d", status)
	}
}

func TestJobsListFilters(t *testing.T) {
	base := serve(t, baseConfig())
	a, c := createJob(t, base, aliceToken), createJob(t, base, aliceToken)
	b := newBrowser(t, base)
	b.login(aliceToken)
	if status, _, _ := b.post("/console/jobs/"+c+"/cancel", url.Values{"csrf": {b.csrf()}}); status != http.StatusSeeOther {
		t.Fatal("cancel")
	}
	waitStatus(t, base, aliceToken, c, protocol.StatusCancelled)
	_, _, page := b.get("/console/jobs?status=cancelled")
	if !strings.Contains(page, c) || strings.Contains(page, a) {
		t.Fatal("status filter")
	}
	// The counts load once the page's live stream opens and reload on
	// each change, like the table.
	if !strings.Contains(page, `<div id="counts" data-live="/console/live" data-refresh="/console/jobs/counts?status=cancelled"`) {
		t.Error("the page's counts are not live")
	}
	_, _, counts := b.get("/console/jobs/counts?status=cancelled")
	for _, want := range []string{`waiting_for_human <b>1</b>`, `cancelled <b>1</b>`, `class="count muted current"`} {
		if !strings.Contains(counts, want) {
			t.Errorf("counts lack %q", want)
		}
	}
	_, _, page = b.get("/console/jobs?q=" + a[:13])
	if !strings.Contains(page, a) || strings.Contains(page, c) && !strings.HasPrefix(c, a[:13]) {
		t.Fatal("id filter")
	}
	if status, _, _ := b.get("/console/jobs?status=bogus"); status != http.StatusBadRequest {
		t.Fatalf("unknown status: %d", status)
	}
	if status, _, body := b.get("/console/jobs?from=2026-01-01T00:00"); status != http.StatusBadRequest || !strings.Contains(body, "history database") {
		t.Fatalf("a time range without history: %d", status)
	}
	if status, _, _ := b.get("/console/jobs?cursor=bogus"); status != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d", status)
	}
}

// readChange reads a live stream until a change of job id with the event
// type arrives.
func readChange(t *testing.T, body io.Reader, id, eventType string) string {
	t.Helper()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(line, `"job_id":"`+id+`"`) &&
			strings.Contains(line, `"event_type":"`+eventType+`"`) {
			return line
		}
	}
	t.Fatalf("the stream ended without a %s change of %s: %v", eventType, id, sc.Err())
	return ""
}

// openStream opens a live stream (a path under /console/) in b's session.
func openStream(t testing.TB, ctx context.Context, b *browser, path string) io.ReadCloser {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/console/"+path, nil)
	c := *b.c
	c.Timeout = 0
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.Body
}

func TestLiveStreamMemory(t *testing.T) {
	base := serve(t, baseConfig())
	testLiveStream(t, base, base, false)
}

// TestLiveStreamRedis: the console of one orchestrator hears of a change
// that another orchestrator on the same Redis makes.
func TestLiveStreamRedis(t *testing.T) {
	cfg := redisConfig(t, "avto-console")
	first, second := serve(t, cfg), serve(t, cfg)
	testLiveStream(t, first, second, true)
}

// testLiveStream: a job's stream hears of its change, made through apiURL;
// another client's stream does not. shared: the orchestrators share a
// store, and a stream's catch-up change says when every one of them knows
// that a page listens.
func testLiveStream(t *testing.T, consoleURL, apiURL string, shared bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := createJob(t, apiURL, aliceToken)
	waitStatus(t, apiURL, aliceToken, id, protocol.StatusWaitingForHuman)
	b := newBrowser(t, consoleURL)
	b.login(aliceToken)
	mine := openStream(t, ctx, b, "jobs/"+id+"/live")
	defer mine.Close()
	if shared {
		readChange(t, mine, "", "catch_up")
	}
	// Bob's stream of all his jobs hears nothing of alice's.
	bob := newBrowser(t, consoleURL)
	bob.login(bobToken)
	bobs := openStream(t, ctx, bob, "live")
	defer bobs.Close()
	bobLines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(bobs)
		for sc.Scan() {
			bobLines <- sc.Text()
		}
		close(bobLines)
	}()
	if status, body := apiCall(t, apiURL, "POST", "/api/v1/jobs/"+id+"/approve", aliceToken, map[string]string{"decision": "approved"}); status != http.StatusOK {
		t.Fatalf("approve: %d %s", status, body)
	}
	if change := readChange(t, mine, id, "job_ended"); !strings.Contains(change, `"status":"finished"`) {
		t.Fatalf("the change does not say the job finished: %s", change)
	}
	waitStatus(t, apiURL, aliceToken, id, protocol.StatusFinished)
	// A job of bob's, after alice's: his stream's first change is his.
	bobJob := createJob(t, apiURL, bobToken)
	for line := range bobLines {
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if strings.Contains(data, id) {
				t.Fatalf("bob's stream carried alice's job: %s", data)
			}
			if strings.Contains(data, bobJob) {
				break
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatal(errors.New("the streams did not deliver before the test's deadline"))
	}
}

// TestJobEventsWhileAPageListens: on a shared store without a history
// database, job events reach the outbox only while a console page listens
// in some orchestrator of the deployment.
func TestJobEventsWhileAPageListens(t *testing.T) {
	cfg := redisConfig(t, "avto-audience")
	first, second := serve(t, cfg), serve(t, cfg)
	outbox, err := redisstore.Open(context.Background(), redisstore.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer outbox.Close()
	// eventsOf runs a job through second and counts the outbox entries
	// that name it.
	eventsOf := func() int {
		id := createJob(t, second, aliceToken)
		waitStatus(t, second, aliceToken, id, protocol.StatusWaitingForHuman)
		if status, body := apiCall(t, second, "POST", "/api/v1/jobs/"+id+"/approve", aliceToken, map[string]string{"decision": "approved"}); status != http.StatusOK {
			t.Fatalf("approve: %d %s", status, body)
		}
		waitStatus(t, second, aliceToken, id, protocol.StatusFinished)
		entries, err := outbox.ReadEvents(context.Background(), "", 10000, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if strings.Contains(string(e.Data), id) {
				n++
			}
		}
		return n
	}
	// Until an orchestrator has read that no page listens, it writes the
	// events: a job a few seconds in has none.
	deadline := time.Now().Add(10 * time.Second)
	for n := eventsOf(); n > 0; n = eventsOf() {
		if time.Now().After(deadline) {
			t.Fatalf("with no page open, a job still wrote %d outbox entries", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newBrowser(t, first)
	b.login(aliceToken)
	list := openStream(t, ctx, b, "live")
	readChange(t, list, "", "catch_up")
	if n := eventsOf(); n == 0 {
		t.Fatal("with a page open in another orchestrator, a job wrote no outbox entries")
	}
	list.Close()
}

// redisConfig is baseConfig on the test Redis, under a fresh prefix that
// starts with name and is dropped after the test.
func redisConfig(t *testing.T, name string) orchestrator.Config {
	redisURL := testenv.URL(t, testenv.RedisVar)
	prefix := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	t.Cleanup(func() { dropPrefix(redisURL, prefix) })
	cfg := baseConfig()
	cfg.RedisURL, cfg.RedisPrefix = redisURL, prefix
	return cfg
}

func dropPrefix(redisURL, prefix string) {
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "{"+prefix+"}*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// TestShutdownEndsLiveStreams: an orchestrator that stops ends the
// console's open streams instead of waiting for them (ShutdownTimeout).
func TestShutdownEndsLiveStreams(t *testing.T) {
	cfg := baseConfig()
	cfg.ShutdownTimeout = time.Minute
	base, stop := start(t, cfg)
	defer stop()
	b := newBrowser(t, base)
	b.login(aliceToken)
	stream := openStream(t, context.Background(), b, "live")
	defer stream.Close()
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stream); ended <- err }()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second): // a deadline for the test, half the shutdown timeout
		t.Fatal("the orchestrator waits for the open stream to end")
	}
	if err := <-ended; err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
}

// TestOperatorsPages: the admin sees the schedules with their job (which
// clients never see) and the queues with a waiting task.
func TestOperatorsPages(t *testing.T) {
	dir := t.TempDir()
	schedules := filepath.Join(dir, "schedules.toml")
	if err := os.WriteFile(schedules, []byte("[nightly_review]\nblueprint = \"review\"\ninterval_seconds = 3600\nenabled = true\n"+
		"[often]\nblueprint = \"review\"\ninterval_seconds = 1\nenabled = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.SchedulesFile = schedules
	bp := blueprint.New("queued").Endpoint("v1", "/jobs/queued")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "nobody_does_this"})
	}, blueprint.On("success", "finished"))
	bp.End("finished", nil)
	base := serve(t, cfg, bp)
	status, body := apiCall(t, base, "POST", "/api/v1/jobs/queued", aliceToken, map[string]any{})
	if status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, body)
	}
	var created protocol.CreateJobResponse
	_ = json.Unmarshal(body, &created)
	waitStatus(t, base, aliceToken, created.JobID, protocol.StatusWaitingForWorker)
	admin := newBrowser(t, base)
	admin.login(adminToken)
	// The scheduler runs the schedule once at start-up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, page := admin.get("/console/schedules")
		if strings.Contains(page, "nightly_review") && strings.Contains(page, `<a class="mono" href="/console/jobs/`) {
			m := regexp.MustCompile(`href="/console/jobs/([0-9a-f-]{36})"`).FindStringSubmatch(page)
			if status, _, _ := admin.get("/console/jobs/" + m[1]); status != http.StatusOK {
				t.Fatalf("the admin opens the scheduled job: %d", status)
			}
			alice := newBrowser(t, base)
			alice.login(aliceToken)
			if status, _, _ := alice.get("/console/jobs/" + m[1]); status != http.StatusNotFound {
				t.Fatalf("a client opens the scheduled job: %d", status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedules page shows no run of nightly_review: %.2000s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last runs of a schedule, each with its job.
	rowRE := regexp.MustCompile(`(?s)<tr data-schedule="often">(.*?)</tr>`)
	for {
		_, _, page := admin.get("/console/schedules")
		row := rowRE.FindStringSubmatch(page)
		if row != nil && len(regexp.MustCompile(`<li>[^<]*<a class="mono" href="/console/jobs/[0-9a-f-]{36}">`).FindAllString(row[1], -1)) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedules page never showed two runs of often with their jobs: %.3000s", page)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, queues := admin.get("/console/queues")
	if !strings.Contains(queues, "nobody_does_this") || !strings.Contains(queues, created.JobID[:8]) {
		t.Fatalf("the queues page lacks the waiting task: %.2000s", queues)
	}
	// Why the head of the queue waits: the reason the job's outstanding
	// task shows.
	_, raw := apiCall(t, base, "GET", "/api/v1/jobs/"+created.JobID, aliceToken, nil)
	var j protocol.Job
	if err := json.Unmarshal(raw, &j); err != nil || len(j.Tasks) != 1 || j.Tasks[0].Reason == "" {
		t.Fatalf("the job's outstanding task has no reason: %v %s", err, raw)
	}
	want := `<td class="why">` + html.EscapeString(j.Tasks[0].Reason) + `</td>`
	if !strings.Contains(queues, want) {
		t.Errorf("the queues page lacks %q: %.3000s", want, queues)
	}
	// The workers page says why no worker takes it, to operators only.
	_, _, workers := admin.get("/console/workers")
	if !strings.Contains(workers, `<tr data-queue="pending:nobody_does_this">`) || !strings.Contains(workers, want) {
		t.Errorf("the workers page lacks the task no worker takes and why: %.3000s", workers)
	}
	alice := newBrowser(t, base)
	alice.login(aliceToken)
	if _, _, page := alice.get("/console/workers"); strings.Contains(page, "nobody_does_this") || strings.Contains(page, `id="waiting"`) {
		t.Error("a client's workers page shows the queues")
	}
}
