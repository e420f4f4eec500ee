package api

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestCreateAndGetJob(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	id := ts.createJob(vipToken, map[string]any{"n": 7})
	j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusWaitingForWorker })
	if j.Blueprint != "demo" || j.CurrentState != "start" || j.InitialData["n"] != 7.0 || j.Client != "client_vip" ||
		j.CreatedAt == nil || j.Result != nil || len(j.Tasks) != 1 || j.Tasks[0].Type != "work" || j.Tasks[0].State != "queued" {
		t.Fatalf("job view %+v", j)
	}
	if !strings.Contains(j.ProgressMessage, "no worker with skill work") || !strings.Contains(j.Tasks[0].Reason, "no worker") {
		t.Fatalf("why the task waits: %q / %q", j.ProgressMessage, j.Tasks[0].Reason)
	}
	r := ts.do("GET", "/api/v1/jobs/"+id+"?fields=status,progress,nope", client(vipToken), nil)
	var m map[string]any
	r.json(t, &m)
	if len(m) != 3 || m["id"] != id || m["status"] != "waiting_for_worker" || m["progress"] != 0.0 {
		t.Fatalf("fields filter: %s", r.body)
	}
}

func TestClientAuthAndIsolation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	id := ts.createJob(vipToken, nil)
	for name, tc := range map[string]struct {
		method, path string
		headers      map[string]string
		body         any
		status       int
		msg          string
	}{
		"create without token":    {"POST", "/api/v1/jobs/demo", nil, "{}", 401, "Missing X-Client-Token"},
		"create unknown token":    {"POST", "/api/v1/jobs/demo", client("nope"), "{}", 401, "Invalid token"},
		"get without token":       {"GET", "/api/v1/jobs/" + id, nil, nil, 401, "Missing"},
		"foreign job is 404":      {"GET", "/api/v1/jobs/" + id, client(otherToken), nil, 404, "Job not found"},
		"missing job is 404":      {"GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000", client(vipToken), nil, 404, "Job not found"},
		"foreign cancel is 404":   {"POST", "/api/v1/jobs/" + id + "/cancel", client(otherToken), nil, 404, "Job not found"},
		"foreign approve":         {"POST", "/api/v1/jobs/" + id + "/approve", client(otherToken), `{"decision":"approved"}`, 404, "Job not found"},
		"foreign public approve":  {"POST", "/_public/webhooks/approval/" + id, client(otherToken), `{"decision":"approved"}`, 404, "Job not found"},
		"public approve no token": {"POST", "/_public/webhooks/approval/" + id, nil, `{"decision":"approved"}`, 401, "Client authentication required"},
		"workers without token":   {"GET", "/api/v1/workers", nil, nil, 401, "Missing"},
		"unknown api version":     {"POST", "/api/v9/jobs/demo", client(vipToken), "{}", 404, ""},
		"unknown endpoint":        {"POST", "/api/v1/jobs/nothing", client(vipToken), "{}", 404, "no blueprint serves"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do(tc.method, tc.path, tc.headers, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.msg != "" && !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("error %s lacks %q", r.body, tc.msg)
			}
		})
	}
	// The other client's listing does not show the job either.
	var page protocol.JobList
	ts.do("GET", "/api/v1/jobs", client(otherToken), nil).json(t, &page)
	if len(page.Jobs) != 0 {
		t.Fatalf("other client sees %d jobs", len(page.Jobs))
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	big := `{"initial_data":{"blob":"` + strings.Repeat("x", 70<<10) + `"}}`
	for name, tc := range map[string]struct {
		body   string
		status int
		msg    string
	}{
		"malformed JSON":           {`{"initial_data":`, 400, "Invalid JSON body"},
		"not an object":            {`[1,2]`, 400, "must be a JSON object"},
		"wrong type":               {`{"initial_data":"text"}`, 400, `field "initial_data" must be an object`},
		"wrong webhook type":       {`{"webhook_url":5}`, 400, `field "webhook_url" must be a string`},
		"trailing data":            {`{} {}`, 400, "unexpected data"},
		"trailing bracket":         {`{}]`, 400, "unexpected data"},
		"ftp webhook":              {`{"webhook_url":"ftp://x/y"}`, 400, "only http and https"},
		"relative webhook":         {`{"webhook_url":"/hook"}`, 400, "webhook_url"},
		"oversized":                {big, 413, "too large"},
		"misspelt field":           {`{"initial_data":{"a":1},"webhok_url":"http://x/y"}`, 400, `unknown field "webhok_url"`},
		"input beside wrapper":     {`{"quality":"low","webhook_url":"http://x/y"}`, 400, `unknown field "quality"`},
		"bare input not an object": {`{"quality":"low"} 1`, 400, "unexpected data"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do("POST", "/api/v1/jobs/demo", client(limitedToken), tc.body)
			if r.status != tc.status || !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("%d %s, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	var page protocol.JobList
	ts.do("GET", "/api/v1/jobs", client(limitedToken), nil).json(t, &page)
	if len(page.Jobs) != 0 {
		t.Fatalf("bad requests created %d jobs", len(page.Jobs))
	}
	// ...and consumed no quota: the limited client can still create two.
	ts.createJob(limitedToken, nil)
	ts.createJob(limitedToken, nil)
}

func TestQuota(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	ts.createJob(limitedToken, nil)
	id := ts.createJob(limitedToken, nil)
	for range 3 { // reads do not count
		if r := ts.do("GET", "/api/v1/jobs/"+id, client(limitedToken), nil); r.status != 200 {
			t.Fatalf("read after quota use: %d", r.status)
		}
	}
	r := ts.do("POST", "/api/v1/jobs/demo", client(limitedToken), "{}")
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.errorText(t), "Quota exceeded: 2 of 2") {
		t.Fatalf("third creation: %d %s", r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 32*24*3600 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// Other clients are unaffected; the count persists in the store.
	ts.createJob(vipToken, nil)
	n, _ := ts.eng.Store().Incr(t.Context(), func() string { k, _ := quotaKey("limited-client", nowUTC()); return k }(), 0, nowUTC().AddDate(0, 2, 0))
	if n != 2 {
		t.Fatalf("stored quota counter = %d", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// A day-long window: the test cannot straddle two windows (but at
	// midnight UTC).
	ts := newTestServer(t, func(o *Options) { o.RateLimit, o.RatePeriod = 3, 24*time.Hour })
	for i := range 3 {
		if r := ts.do("GET", "/api/v1/workers", client(vipToken), nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := ts.do("GET", "/api/v1/workers", client(vipToken), nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if r := ts.do("GET", "/api/v1/workers", client(otherToken), nil); r.status != 200 {
		t.Fatalf("another client is limited too: %d", r.status)
	}
}

func TestCancelApproveAndList(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	id := ts.createJob(vipToken, nil)
	r := ts.do("POST", "/api/v1/jobs/"+id+"/cancel", client(vipToken), nil)
	if r.status != 200 || !strings.Contains(string(r.body), "cancellation_request_accepted") {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if j := ts.job(vipToken, id); j.Status != protocol.StatusCancelled || j.FinishedAt == nil {
		t.Fatalf("after cancel: %+v", j)
	}
	if r := ts.do("POST", "/api/v1/jobs/"+id+"/cancel", client(vipToken), nil); r.status != 404 || r.errorText(t) != "Job not found or already terminal." {
		t.Fatalf("second cancel: %d %s", r.status, r.body)
	}

	appr := ts.createJob(vipToken, map[string]any{"mode": "approval"})
	j := ts.waitJob(appr, func(j protocol.Job) bool { return j.Status == protocol.StatusWaitingForHuman })
	if j.Approval == nil || j.Approval.Message != "Please review" || strings.Join(j.Approval.Decisions, ",") != "approved,rejected" {
		t.Fatalf("approval info %+v", j.Approval)
	}
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{}`, 400, "decision is required"},
		{`{"decision":1}`, 400, `field "decision" must be a string`},
		{`{"decision":"maybe"}`, 400, `invalid decision "maybe"`},
	} {
		if r := ts.do("POST", "/api/v1/jobs/"+appr+"/approve", client(vipToken), tc.body); r.status != tc.status || !strings.Contains(r.errorText(t), tc.msg) {
			t.Fatalf("approve %s: %d %s", tc.body, r.status, r.body)
		}
	}
	if r := ts.do("POST", "/_public/webhooks/approval/"+appr, client(vipToken), `{"decision":"approved"}`); r.status != 200 ||
		!strings.Contains(string(r.body), `"approval_received"`) {
		t.Fatalf("public approval: %d %s", r.status, r.body)
	}
	ts.waitJob(appr, func(j protocol.Job) bool { return j.Status == protocol.StatusFinished && j.Result != nil })
	if r := ts.do("POST", "/api/v1/jobs/"+appr+"/approve", client(vipToken), `{"decision":"approved"}`); r.status != 409 {
		t.Fatalf("approving an ended job: %d %s", r.status, r.body)
	}

	for range 5 {
		ts.createJob(vipToken, nil)
	}
	var ids []string
	cursor := ""
	for {
		var page protocol.JobList
		r := ts.do("GET", "/api/v1/jobs?limit=3&cursor="+cursor, client(vipToken), nil)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r.json(t, &page)
		for _, j := range page.Jobs {
			ids = append(ids, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(ids) != 7 || ids[len(ids)-1] != id {
		t.Fatalf("listed %d jobs, oldest %s (want %s)", len(ids), ids[len(ids)-1], id)
	}
	var finished protocol.JobList
	ts.do("GET", "/api/v1/jobs?status=finished", client(vipToken), nil).json(t, &finished)
	if len(finished.Jobs) != 1 || finished.Jobs[0].ID != appr {
		t.Fatalf("status filter: %+v", finished)
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=501", "cursor=garbage", "offset=3"} {
		if r := ts.do("GET", "/api/v1/jobs?"+q, client(vipToken), nil); r.status != 400 {
			t.Fatalf("list ?%s: %d", q, r.status)
		}
	}
}

func TestBlueprintsAndGraphs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	var bps []protocol.BlueprintInfo
	ts.do("GET", "/api/v1/blueprints", client(vipToken), nil).json(t, &bps)
	if len(bps) != 1 || bps[0].Name != "demo" || bps[0].Endpoint != "/api/v1/jobs/demo" || bps[0].StartState != "start" ||
		strings.Join(bps[0].EndStates, ",") != "finished,rejected" {
		t.Fatalf("blueprints %+v", bps)
	}
	r := ts.do("GET", "/api/v1/blueprints/demo/graph", client(vipToken), nil)
	if r.status != 200 || r.header.Get("Content-Type") != "text/vnd.graphviz; charset=utf-8" || !strings.Contains(string(r.body), `"start" -> "join" [label="fan-out / fan-in"`) {
		t.Fatalf("dot: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = ts.do("GET", "/api/v1/blueprints/demo/graph?format=mermaid", client(vipToken), nil)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "stateDiagram-v2") {
		t.Fatalf("mermaid: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/api/v1/blueprints/demo/graph?format=png", client(vipToken), nil); r.status != 400 {
		t.Fatalf("bad format: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/blueprints/nope/graph", client(vipToken), nil); r.status != 404 {
		t.Fatalf("unknown blueprint: %d", r.status)
	}
}

func TestAdminReload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	admin := map[string]string{protocol.HeaderAdminToken: adminToken}
	if r := ts.do("POST", "/api/v1/admin/reload", nil, nil); r.status != 403 {
		t.Fatalf("no admin token: %d", r.status)
	}
	if r := ts.do("POST", "/api/v1/admin/reload", map[string]string{protocol.HeaderAdminToken: "guess"}, nil); r.status != 403 {
		t.Fatalf("wrong admin token: %d", r.status)
	}
	if r := ts.do("POST", "/api/v1/admin/reload", client(vipToken), nil); r.status != 403 {
		t.Fatalf("a client token is not an admin token: %d", r.status)
	}
	job := ts.createJob(vipToken, nil)
	if r := ts.do("GET", "/api/v1/admin/jobs/"+job, admin, nil); r.status != 200 || !strings.Contains(string(r.body), job) {
		t.Fatalf("admin job read: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/api/v1/admin/jobs/"+job, client(vipToken), nil); r.status != 403 {
		t.Fatalf("admin job read with a client token: %d", r.status)
	}
	if r := ts.do("GET", "/api/v1/admin/schedules", admin, nil); r.status != 200 || string(r.body) != "[]\n" {
		t.Fatalf("schedules: %d %s", r.status, r.body)
	}
	writeFile(t, ts.clients, "[newcomer]\ntoken = \"fresh-token\"\n")
	r := ts.do("POST", "/api/v1/admin/reload", admin, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"clients":1`) {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	ts.createJob("fresh-token", nil)
	if r := ts.do("GET", "/api/v1/jobs", client(vipToken), nil); r.status != 401 {
		t.Fatalf("removed client still accepted: %d", r.status)
	}
	writeFile(t, ts.clients, "[broken]\nplan = 3\n")
	if r := ts.do("POST", "/api/v1/admin/reload", admin, nil); r.status != 400 {
		t.Fatalf("invalid file: %d %s", r.status, r.body)
	}
	ts.createJob("fresh-token", nil) // the previous configuration stays
}

func TestPublicRoutes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	for path, want := range map[string]string{"/_public/status": `"ok"`, "/_public/ready": `"ready"`} {
		r := ts.do("GET", path, nil, nil)
		if r.status != 200 || !strings.Contains(string(r.body), want) {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	r := ts.do("GET", "/_public/docs", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), "SwaggerUIBundle") {
		t.Fatalf("docs: %d", r.status)
	}
	for _, asset := range []string{"swagger-ui-bundle.js", "swagger-ui.css"} {
		if r := ts.do("GET", "/_public/docs/"+asset, nil, nil); r.status != 200 || len(r.body) < 10000 {
			t.Fatalf("%s: %d %d bytes", asset, r.status, len(r.body))
		}
	}
	if r := ts.do("GET", "/_public/docs/..%2fserver.go", nil, nil); r.status != 404 {
		t.Fatalf("asset path escape: %d", r.status)
	}
}

func TestWorkersListHasNoSecrets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("gpu-worker-01", gpuToken)
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	r := ts.do("GET", "/api/v1/workers", client(vipToken), nil)
	var ws []protocol.WorkerInfo
	r.json(t, &ws)
	if len(ws) != 1 || ws[0].WorkerID != "gpu-worker-01" || ws[0].Reputation != 1 || ws[0].CostPerSkill["work"] != 0.001 {
		t.Fatalf("workers %s", r.body)
	}
	for _, secret := range []string{gpuToken, globalToken, "signature"} {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("workers list leaks %q: %s", secret, r.body)
		}
	}
}

func TestParallelThroughAPI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	w.register("work")
	id := ts.createJob(vipToken, map[string]any{"mode": "parallel"})
	for range 2 {
		p := w.take()
		if r := w.result(p.JobID, p.TaskID, "success", map[string]any{"n": p.Params["n"]}); r.status != 200 || !strings.Contains(string(r.body), "parallel_branch_accepted") {
			t.Fatalf("result: %d %s", r.status, r.body)
		}
	}
	j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() })
	if j.Status != protocol.StatusFinished || j.StateHistory["branches"] != 2.0 {
		t.Fatalf("job %+v", j)
	}
}

// A body without the initial_data wrapper is the input itself; one with
// any of upstream's create fields is the wrapper, and upstream's fields we
// do not use are accepted.
func TestCreateBodyForms(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	for name, tc := range map[string]struct {
		body string
		want map[string]any
	}{
		"bare input":          {`{"quality":"low","n":2}`, map[string]any{"quality": "low", "n": 2.0}},
		"wrapped input":       {`{"initial_data":{"quality":"high"}}`, map[string]any{"quality": "high"}},
		"empty object":        {`{}`, map[string]any{}},
		"empty body":          {``, map[string]any{}},
		"wrapper, no input":   {`{"webhook_url":"http://127.0.0.1:1/hook"}`, map[string]any{}},
		"upstream's fields":   {`{"initial_data":{"a":1},"dispatch_timeout":30,"result_timeout":60,"security":{},"metadata":{"m":1},"policy":{},"max_transitions":10}`, map[string]any{"a": 1.0}},
		"null initial_data":   {`{"initial_data":null}`, map[string]any{}},
		"nested wrapper name": {`{"job":{"initial_data":{"x":1}}}`, map[string]any{"job": map[string]any{"initial_data": map[string]any{"x": 1.0}}}},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), tc.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var out protocol.CreateJobResponse
			r.json(t, &out)
			var view map[string]any
			ts.do("GET", "/api/v1/jobs/"+out.JobID+"?fields=initial_data", client(vipToken), nil).json(t, &view)
			got, _ := view["initial_data"].(map[string]any)
			if got == nil {
				got = map[string]any{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("initial_data %#v, want %#v", view["initial_data"], tc.want)
			}
		})
	}
}

// A job's policy goes with its tasks; a task type outside allowed_skills
// fails the job before any worker sees it; a malformed policy is refused.
func TestJobPolicy(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.registered("w1", "work")
	r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), `{"initial_data":{"n":1},"policy":{"allowed_skills":["work"],"note":"x"}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	task := w.take()
	if got, _ := task.Policy["allowed_skills"].([]any); len(got) != 1 || got[0] != "work" || task.Policy["note"] != "x" {
		t.Fatalf("task policy %v", task.Policy)
	}
	if j := ts.job(vipToken, task.JobID); j.Policy == nil {
		t.Fatalf("the job view lacks the policy: %+v", j)
	}

	r = ts.do("POST", "/api/v1/jobs/demo", client(vipToken), `{"policy":{"allowed_skills":["resize"]}}`)
	var out protocol.CreateJobResponse
	r.json(t, &out)
	j := ts.waitJob(out.JobID, func(j protocol.Job) bool { return j.Status.Terminal() })
	if j.Status != protocol.StatusFailed || !strings.Contains(j.ErrorMessage, `task type "work", which the job's policy does not allow`) {
		t.Fatalf("disallowed task: %s %q", j.Status, j.ErrorMessage)
	}

	for name, tc := range map[string]struct{ body, msg string }{
		"not an object":       {`{"policy":"all"}`, `field "policy" must be an object`},
		"empty list":          {`{"policy":{"allowed_skills":[]}}`, "non-empty list of strings"},
		"not a list":          {`{"policy":{"allowed_skills":"work"}}`, "non-empty list of strings"},
		"not strings":         {`{"policy":{"allowed_skills":[1]}}`, "non-empty list of strings"},
		"over the size limit": {`{"policy":{"x":"` + strings.Repeat("a", protocol.MaxPolicyBytes) + `"}}`, "over the limit of 4096"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do("POST", "/api/v1/jobs/demo", client(limitedToken), tc.body)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("%d %s, want 400 %q", r.status, r.body, tc.msg)
			}
		})
	}
	var page protocol.JobList
	ts.do("GET", "/api/v1/jobs", client(limitedToken), nil).json(t, &page)
	if len(page.Jobs) != 0 {
		t.Fatalf("refused policies created %d jobs", len(page.Jobs))
	}
}

// A pending approval has a single-use, expiring URL, shown to the owner,
// that approves without the client token.
func TestApprovalTokens(t *testing.T) {
	ts := newTestServer(t, nil)
	waiting := func(token string) protocol.Job {
		id := ts.createJob(token, map[string]any{"mode": "approval"})
		return ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusWaitingForHuman })
	}
	a, b := waiting(vipToken), waiting(vipToken)
	if a.Approval == nil || !strings.HasPrefix(a.Approval.URL, "/_public/webhooks/approval/"+a.ID+"?token=") || a.Approval.ExpiresAt == nil ||
		!a.Approval.ExpiresAt.After(time.Now().Add(6*24*time.Hour)) {
		t.Fatalf("approval %+v", a.Approval)
	}
	var page protocol.JobList
	ts.do("GET", "/api/v1/jobs", client(vipToken), nil).json(t, &page)
	for _, j := range page.Jobs {
		if j.Approval != nil && j.Approval.URL != "" {
			t.Fatalf("a job list shows the approval URL")
		}
	}
	tokenOf := func(j protocol.Job) string {
		return j.Approval.URL[strings.Index(j.Approval.URL, "token=")+len("token="):]
	}
	for name, tc := range map[string]struct {
		path, body string
	}{
		"wrong token":            {"/_public/webhooks/approval/" + a.ID + "?token=nope", `{"decision":"approved"}`},
		"another job's token":    {"/_public/webhooks/approval/" + a.ID + "?token=" + tokenOf(b), `{"decision":"approved"}`},
		"token of a job, no job": {"/_public/webhooks/approval/00000000-0000-0000-0000-000000000000?token=" + tokenOf(a), `{"decision":"approved"}`},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do("POST", tc.path, nil, tc.body)
			if r.status != http.StatusForbidden || !strings.Contains(r.errorText(t), "invalid, used or expired approval token") {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	if r := ts.do("POST", a.Approval.URL, nil, `{"decision":"maybe"}`); r.status != http.StatusBadRequest {
		t.Fatalf("invalid decision: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", a.Approval.URL, nil, `{"decision":"approved"}`); r.status != http.StatusOK {
		t.Fatalf("approve with the URL: %d %s", r.status, r.body)
	}
	if j := ts.waitJob(a.ID, func(j protocol.Job) bool { return j.Status.Terminal() }); j.Status != protocol.StatusFinished {
		t.Fatalf("job %s", j.Status)
	}
	if r := ts.do("POST", a.Approval.URL, nil, `{"decision":"rejected"}`); r.status != http.StatusForbidden {
		t.Fatalf("a used URL: %d %s", r.status, r.body)
	}
	// The token in the body, as upstream takes it.
	if r := ts.do("POST", "/_public/webhooks/approval/"+b.ID, nil, `{"decision":"rejected","token":"`+tokenOf(b)+`"}`); r.status != http.StatusOK {
		t.Fatalf("token in the body: %d %s", r.status, r.body)
	}
	if j := ts.waitJob(b.ID, func(j protocol.Job) bool { return j.Status.Terminal() }); j.CurrentState != "rejected" {
		t.Fatalf("job %s in %s", j.Status, j.CurrentState)
	}

	// Expired: refused; the owner's client token still decides.
	expired := newTestServerWith(t, func(c *engine.Config) { c.ApprovalTokenTTL = time.Nanosecond }, nil)
	id := expired.createJob(vipToken, map[string]any{"mode": "approval"})
	j := expired.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusWaitingForHuman })
	if r := expired.do("POST", j.Approval.URL, nil, `{"decision":"approved"}`); r.status != http.StatusForbidden {
		t.Fatalf("an expired URL: %d %s", r.status, r.body)
	}
	if r := expired.do("POST", "/_public/webhooks/approval/"+id, client(vipToken), `{"decision":"approved"}`); r.status != http.StatusOK {
		t.Fatalf("the owner after expiry: %d %s", r.status, r.body)
	}
}
