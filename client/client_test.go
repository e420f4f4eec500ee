package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, base, token string
		opts              []client.Option
		want              string
	}{
		{"bad scheme", "ftp://host", tokenA, nil, "scheme"},
		{"no scheme", "localhost:8080", tokenA, nil, "scheme"},
		{"no host", "http://", tokenA, nil, "no host"},
		{"query", "http://host/?x=1", tokenA, nil, "query"},
		{"empty token", "http://host", "", nil, "token is required"},
		{"token with newline", "http://host", tokenA + "\r\nX-Evil: 1", nil, "not allowed"},
		{"bad version", "http://host", tokenA, []client.Option{client.WithAPIVersion("v1/x")}, "API version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New(tc.base, tc.token, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%q) error = %v, want one mentioning %q", tc.base, err, tc.want)
			}
			if strings.Contains(err.Error(), tokenA) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestClientStringHidesToken(t *testing.T) {
	t.Parallel()
	c, err := client.New("https://user:pw@example.com/orch/", tokenA)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, c)
		if strings.Contains(s, tokenA) || strings.Contains(s, "pw") {
			t.Errorf("%s of the client leaks a secret: %s", verb, s)
		}
	}
}

func TestCreateJob(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /api/v1/jobs/full_showcase", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, protocol.CreateJobResponse{Status: "accepted", JobID: "job-1"})
	})
	c := f.client()
	data := map[string]any{"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": true}
	id, err := c.CreateJob(context.Background(), "/jobs/full_showcase", data, client.WithWebhook("http://hooks.local/webhook"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "job-1" {
		t.Fatalf("id = %q", id)
	}
	r := f.only()
	expect(t, r, http.MethodPost, "/api/v1/jobs/full_showcase")
	if r.ContentType != "application/json" {
		t.Errorf("Content-Type = %q", r.ContentType)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	want := map[string]any{"initial_data": data, "webhook_url": "http://hooks.local/webhook"}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestCreateJobPathsAndVersions(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	accept := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, protocol.CreateJobResponse{Status: "accepted", JobID: "x"})
	}
	f.handle("POST /api/v1/jobs/full_showcase", accept)
	f.handle("POST /api/v2/render/video", accept)
	f.handle("POST /api/plain", accept)
	ctx := context.Background()

	// No leading slash, nil data: body is {} (the server defaults initial_data).
	if _, err := f.client().CreateJob(ctx, "jobs/full_showcase", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(client.WithAPIVersion("v2")).CreateJob(ctx, "/render/video", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(client.WithAPIVersion("")).CreateJob(ctx, "/plain", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, p := range []string{"/api/v1/jobs/full_showcase", "/api/v2/render/video", "/api/plain"} {
		expect(t, reqs[i], http.MethodPost, p)
		if string(reqs[i].Body) != "{}" {
			t.Errorf("%s body = %s, want {}", p, reqs[i].Body)
		}
	}

	for _, bad := range []string{"", "/", "/jobs//x", "/jobs/../admin", "./x"} {
		_, err := f.client().CreateJob(ctx, bad, nil)
		if !errors.Is(err, client.ErrInvalid) {
			t.Errorf("CreateJob(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("refused endpoints still sent requests: %d", n)
	}
}

func TestCreateJobErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /api/v1/jobs/invalid", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Input validation failed for blueprint 'b': quality is required"})
	})
	f.handle("POST /api/v1/jobs/quota", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "Quota exceeded"})
	})
	f.handle("POST /api/v1/jobs/big", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "Request body too large"})
	})
	f.handle("POST /api/v1/jobs/noid", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted"})
	})
	c := f.client()
	ctx := context.Background()

	_, err := c.CreateJob(ctx, "/jobs/invalid", nil)
	assertAPIError(t, err, client.ErrInvalid, 400, "Input validation failed for blueprint 'b': quality is required")
	if !strings.Contains(err.Error(), `create job at "/jobs/invalid"`) {
		t.Errorf("error lacks context: %v", err)
	}

	_, err = c.CreateJob(ctx, "/jobs/quota", nil)
	apiErr := assertAPIError(t, err, client.ErrRateLimited, 429, "Quota exceeded")
	if apiErr.RetryAfter != time.Hour {
		t.Errorf("RetryAfter = %v, want 1h", apiErr.RetryAfter)
	}

	_, err = c.CreateJob(ctx, "/jobs/big", nil)
	assertAPIError(t, err, client.ErrTooLarge, 413, "Request body too large")

	_, err = c.CreateJob(ctx, "/jobs/noid", nil)
	if err == nil || !strings.Contains(err.Error(), "no job_id") {
		t.Errorf("missing job_id: err = %v", err)
	}
}

// assertAPIError checks that err wraps an *Error with this status and
// message, matches sentinel and no other sentinel, and does not leak tokens.
func assertAPIError(t *testing.T, err error, sentinel error, status int, msg string) *client.Error {
	t.Helper()
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *client.Error", err, err)
	}
	if apiErr.StatusCode != status || apiErr.Message != msg {
		t.Errorf("got %d %q, want %d %q", apiErr.StatusCode, apiErr.Message, status, msg)
	}
	all := []error{client.ErrInvalid, client.ErrUnauthorized, client.ErrForbidden, client.ErrNotFound,
		client.ErrConflict, client.ErrTooLarge, client.ErrRateLimited, client.ErrServer}
	for _, s := range all {
		if got, want := errors.Is(err, s), s == sentinel; got != want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
		}
	}
	// Error() leaves out a leading status text that the message repeats.
	shown := strings.TrimPrefix(msg, http.StatusText(status)+": ")
	if !strings.Contains(err.Error(), fmt.Sprint(status)) || !strings.Contains(err.Error(), shown) {
		t.Errorf("Error() = %q lacks status or message", err.Error())
	}
	if strings.Contains(err.Error(), tokenA) || strings.Contains(err.Error(), tokenB) {
		t.Errorf("Error() leaks a token: %q", err.Error())
	}
	return apiErr
}

// jobServer registers GET /api/v1/jobs/{id} over a fixed set of jobs
// owned by tokenA; other clients get 404 like unknown ids.
func jobServer(f *fake, jobs map[string]protocol.Job) {
	f.handle("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := jobs[r.PathValue("id")]
		if !ok || r.Header.Get(protocol.HeaderClientToken) != tokenA {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Job not found"})
			return
		}
		if fields := r.URL.Query().Get("fields"); fields != "" {
			full := map[string]any{}
			b, _ := json.Marshal(j)
			_ = json.Unmarshal(b, &full)
			out := map[string]any{"id": j.ID}
			for _, k := range strings.Split(fields, ",") {
				if v, ok := full[k]; ok {
					out[k] = v
				}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
}

func TestJob(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	created := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	full := protocol.Job{
		ID: "job-1", Blueprint: "full_showcase", Status: protocol.StatusWaitingForHuman,
		CurrentState: "approval", Progress: 0.5, ProgressMessage: "waiting",
		StateHistory: map[string]any{"analysis": "ok"},
		Approval:     &protocol.ApprovalInfo{Message: "ship it?", Decisions: []string{"approved", "rejected"}},
		CreatedAt:    &created,
	}
	jobServer(f, map[string]protocol.Job{"job-1": full, "a/b c": {ID: "a/b c", Status: protocol.StatusRunning}})
	c := f.client()
	ctx := context.Background()

	got, err := c.Job(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, full) {
		t.Errorf("Job = %+v\nwant %+v", *got, full)
	}
	r := f.only()
	expect(t, r, http.MethodGet, "/api/v1/jobs/job-1")
	if r.Accept != "application/json" || len(r.Body) != 0 || len(r.Query) != 0 {
		t.Errorf("request %+v", r)
	}

	got, err = c.Job(ctx, "job-1", client.Fields("status", "progress"))
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Job{ID: "job-1", Status: protocol.StatusWaitingForHuman, Progress: 0.5}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Job with fields = %+v, want %+v", *got, want)
	}
	if q := f.requests()[1].Query.Get("fields"); q != "status,progress" {
		t.Errorf("fields = %q", q)
	}

	// Ids are escaped as one path segment.
	if got, err = c.Job(ctx, "a/b c"); err != nil || got.ID != "a/b c" {
		t.Fatalf("Job(a/b c) = %+v, %v", got, err)
	}
	if p := f.requests()[2].EscapedPath; p != "/api/v1/jobs/a%2Fb%20c" {
		t.Errorf("escaped path = %q", p)
	}

	_, err = c.Job(ctx, "missing")
	assertAPIError(t, err, client.ErrNotFound, 404, "Job not found")
	if !strings.Contains(err.Error(), `get job "missing"`) {
		t.Errorf("error lacks context: %v", err)
	}
	// Another client's job looks like a missing one.
	_, err = f.clientWithToken(tokenB).Job(ctx, "job-1")
	assertAPIError(t, err, client.ErrNotFound, 404, "Job not found")

	before := len(f.requests())
	for _, bad := range []string{"", ".", ".."} {
		if _, err := c.Job(ctx, bad); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Job(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if after := len(f.requests()); after != before {
		t.Errorf("refused ids still sent %d requests", after-before)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /api/v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "running" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Job not found or already terminal."})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "cancellation_request_accepted"})
	})
	c := f.client()
	ctx := context.Background()
	if err := c.Cancel(ctx, "running"); err != nil {
		t.Fatal(err)
	}
	r := f.only()
	expect(t, r, http.MethodPost, "/api/v1/jobs/running/cancel")
	if len(r.Body) != 0 {
		t.Errorf("cancel sent a body: %s", r.Body)
	}
	err := c.Cancel(ctx, "done")
	assertAPIError(t, err, client.ErrNotFound, 404, "Job not found or already terminal.")
	if !strings.Contains(err.Error(), `cancel job "done"`) {
		t.Errorf("error lacks context: %v", err)
	}
	if err := c.Cancel(ctx, ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Cancel(\"\") = %v", err)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /api/v1/jobs/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "failed" {
			writeJSON(w, http.StatusConflict, map[string]any{"error": "job cannot be retried: job " + id + " is finished"})
			return
		}
		writeJSON(w, http.StatusOK, protocol.RetryResponse{Status: "retry_accepted", JobID: "failed", State: "transcode"})
	})
	c := f.client()
	ctx := context.Background()
	state, err := c.Retry(ctx, "failed")
	if err != nil || state != "transcode" {
		t.Fatalf("Retry = %q, %v", state, err)
	}
	expect(t, f.only(), http.MethodPost, "/api/v1/jobs/failed/retry")
	_, err = c.Retry(ctx, "done")
	assertAPIError(t, err, client.ErrConflict, 409, "job cannot be retried: job done is finished")
	if !strings.Contains(err.Error(), `retry job "done"`) {
		t.Errorf("error lacks context: %v", err)
	}
	if _, err := c.Retry(ctx, ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Retry(\"\") = %v", err)
	}
}

func TestApprove(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /api/v1/jobs/{id}/approve", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.ApprovalRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Invalid JSON body"})
			return
		}
		switch {
		case r.PathValue("id") != "waiting":
			writeJSON(w, http.StatusConflict, map[string]any{"error": "Job is not in a state that can be approved"})
		case req.Decision != "approved" && req.Decision != "rejected":
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("Invalid decision '%s' for this job", req.Decision)})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"status": "approval_received", "job_id": r.PathValue("id")})
		}
	})
	c := f.client()
	ctx := context.Background()
	if err := c.Approve(ctx, "waiting", "approved"); err != nil {
		t.Fatal(err)
	}
	r := f.only()
	expect(t, r, http.MethodPost, "/api/v1/jobs/waiting/approve")
	if string(r.Body) != `{"decision":"approved"}` || r.ContentType != "application/json" {
		t.Errorf("body %s (%s)", r.Body, r.ContentType)
	}
	assertAPIError(t, c.Approve(ctx, "running", "approved"), client.ErrConflict, 409, "Job is not in a state that can be approved")
	assertAPIError(t, c.Approve(ctx, "waiting", "maybe"), client.ErrInvalid, 400, "Invalid decision 'maybe' for this job")

	n := len(f.requests())
	if err := c.Approve(ctx, "waiting", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty decision: %v", err)
	}
	if err := c.Approve(ctx, "", "approved"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty id: %v", err)
	}
	if len(f.requests()) != n {
		t.Error("refused approvals still sent requests")
	}
}

// listServer serves GET /api/v1/jobs over n jobs, limit per page, with the
// cursor being the index of the next job.
func listServer(f *fake, n int) {
	f.handle("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 100
		if v := q.Get("limit"); v != "" {
			fmt.Sscan(v, &limit)
		}
		start := 0
		if v := q.Get("cursor"); v != "" {
			fmt.Sscanf(v, "c%d", &start)
		}
		page := protocol.JobList{Jobs: []protocol.Job{}}
		for i := start; i < n && i < start+limit; i++ {
			page.Jobs = append(page.Jobs, protocol.Job{ID: fmt.Sprintf("job-%d", i), Status: protocol.StatusRunning})
		}
		if start+limit < n {
			page.NextCursor = fmt.Sprintf("c%d", start+limit)
		}
		writeJSON(w, http.StatusOK, page)
	})
}

func TestJobsPagination(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	listServer(f, 5)
	c := f.client()
	ctx := context.Background()

	opts := client.ListOptions{Limit: 2, Status: protocol.StatusRunning, Blueprint: "full_showcase"}
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, err := c.Jobs(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	if want := []string{"job-0", "job-1", "job-2", "job-3", "job-4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v", ids)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, cursor := range []string{"", "c2", "c4"} {
		expect(t, reqs[i], http.MethodGet, "/api/v1/jobs")
		q := reqs[i].Query
		if q.Get("limit") != "2" || q.Get("status") != "running" || q.Get("blueprint") != "full_showcase" || q.Get("cursor") != cursor {
			t.Errorf("page %d query = %v", i, q)
		}
		if _, has := q["cursor"]; has != (cursor != "") {
			t.Errorf("page %d: cursor present = %v", i, has)
		}
	}

	// Zero options send no query at all.
	if _, err := c.Jobs(ctx, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if q := f.requests()[3].Query; len(q) != 0 {
		t.Errorf("empty options sent %v", q)
	}
	if _, err := c.Jobs(ctx, client.ListOptions{Limit: -1}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("negative limit: %v", err)
	}
}

func TestAllJobs(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	listServer(f, 7)
	c := f.client()
	ctx := context.Background()

	var ids []string
	for j, err := range c.AllJobs(ctx, client.ListOptions{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if len(ids) != 7 || ids[6] != "job-6" {
		t.Errorf("ids = %v", ids)
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests for 7 jobs in pages of 3", n)
	}

	// Breaking out stops paging.
	before := len(f.requests())
	for range c.AllJobs(ctx, client.ListOptions{Limit: 3}) {
		break
	}
	if n := len(f.requests()) - before; n != 1 {
		t.Errorf("break after one job made %d requests", n)
	}
}

func TestAllJobsErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("blueprint") == "broken" {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "boom"})
			return
		}
		writeJSON(w, http.StatusOK, protocol.JobList{Jobs: []protocol.Job{{ID: "j"}}, NextCursor: "same"})
	})
	c := f.client()
	var errs []error
	n := 0
	for _, err := range c.AllJobs(context.Background(), client.ListOptions{}) {
		if err != nil {
			errs = append(errs, err)
		} else {
			n++
		}
	}
	if n != 2 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "repeated cursor") {
		t.Errorf("repeated cursor: %d jobs, errors %v", n, errs)
	}
	for _, err := range c.AllJobs(context.Background(), client.ListOptions{Blueprint: "broken"}) {
		assertAPIError(t, err, client.ErrServer, 500, "boom")
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /api/v1/jobs/{id}/history", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[
			{"event_id":"e1","event_type":"job_created","state":"pending","timestamp":"2025-05-01T12:00:00.5+02:00","metadata":{"source":"api"}},
			{"event_type":"state_finished","state":"analysis","timestamp":1746093600.25,"duration_ms":12},
			{"event_type":"odd","timestamp":"yesterday"}
		]`)
	})
	hist, err := f.client().History(context.Background(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, f.only(), http.MethodGet, "/api/v1/jobs/job-1/history")
	if len(hist) != 3 {
		t.Fatalf("%d events", len(hist))
	}
	if e := hist[0]; e.EventType != "job_created" || e.State != "pending" ||
		!e.Timestamp.Equal(time.Date(2025, 5, 1, 10, 0, 0, 5e8, time.UTC)) || e.Fields["event_id"] != "e1" {
		t.Errorf("event 0 = %+v", e)
	}
	if e := hist[1]; e.EventType != "state_finished" || !e.Timestamp.Equal(time.Unix(1746093600, 25e7)) || e.Fields["duration_ms"] != float64(12) {
		t.Errorf("event 1 = %+v", e)
	}
	if e := hist[2]; !e.Timestamp.IsZero() || e.Fields["timestamp"] != "yesterday" {
		t.Errorf("event 2 = %+v", e)
	}
	// Events marshal back to what the server sent.
	b, err := json.Marshal(hist[0])
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if !reflect.DeepEqual(back, hist[0].Fields) {
		t.Errorf("round trip = %v", back)
	}
	if _, err := f.client().History(context.Background(), ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty id: %v", err)
	}
}

func TestWorkersBlueprintsGraph(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seen := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	workers := []protocol.WorkerInfo{{
		WorkerID: "gpu-1", WorkerType: "gpu", Status: protocol.WorkerIdle, Reputation: 0.98,
		HotSkills: []string{"transcode"}, CostPerSkill: map[string]float64{"transcode": 1.5},
		RegisteredAt: seen, LastSeen: seen,
	}}
	bps := []protocol.BlueprintInfo{{
		Name: "full_showcase", APIVersion: "v1", Endpoint: "/api/v1/jobs/full_showcase",
		StartState: "start", States: []string{"start", "finished"}, EndStates: []string{"finished"},
	}}
	f.handle("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, workers) })
	f.handle("GET /api/v1/blueprints", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, bps) })
	f.handle("GET /api/v1/blueprints/{name}/graph", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "full_showcase" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Blueprint not found"})
			return
		}
		if r.URL.Query().Get("format") == "mermaid" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, "stateDiagram-v2\n  start --> finished\n")
			return
		}
		w.Header().Set("Content-Type", "text/vnd.graphviz")
		fmt.Fprint(w, "digraph full_showcase {\n  start -> finished;\n}\n")
	})
	c := f.client()
	ctx := context.Background()

	gotW, err := c.Workers(ctx)
	if err != nil || !reflect.DeepEqual(gotW, workers) {
		t.Errorf("Workers = %+v, %v", gotW, err)
	}
	gotB, err := c.Blueprints(ctx)
	if err != nil || !reflect.DeepEqual(gotB, bps) {
		t.Errorf("Blueprints = %+v, %v", gotB, err)
	}
	mermaid, err := c.Graph(ctx, "full_showcase", "mermaid")
	if err != nil || mermaid != "stateDiagram-v2\n  start --> finished\n" {
		t.Errorf("mermaid = %q, %v", mermaid, err)
	}
	dot, err := c.Graph(ctx, "full_showcase", "")
	if err != nil || !strings.HasPrefix(dot, "digraph full_showcase") {
		t.Errorf("dot = %q, %v", dot, err)
	}
	reqs := f.requests()
	expect(t, reqs[0], http.MethodGet, "/api/v1/workers")
	expect(t, reqs[1], http.MethodGet, "/api/v1/blueprints")
	expect(t, reqs[2], http.MethodGet, "/api/v1/blueprints/full_showcase/graph")
	if reqs[2].Query.Get("format") != "mermaid" {
		t.Errorf("graph query = %v", reqs[2].Query)
	}
	if _, has := reqs[3].Query["format"]; has {
		t.Errorf("empty format was sent: %v", reqs[3].Query)
	}
	if !strings.Contains(reqs[2].Accept, "text/vnd.graphviz") {
		t.Errorf("graph Accept = %q", reqs[2].Accept)
	}

	_, err = c.Graph(ctx, "nope", "dot")
	assertAPIError(t, err, client.ErrNotFound, 404, "Blueprint not found")
	if !strings.Contains(err.Error(), `graph of blueprint "nope"`) {
		t.Errorf("error lacks context: %v", err)
	}
	if _, err := c.Graph(ctx, "", "dot"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty blueprint: %v", err)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	jobServer(f, map[string]protocol.Job{"job-1": {ID: "job-1"}})
	_, err := f.clientWithToken("wrong-token").Job(context.Background(), "job-1")
	assertAPIError(t, err, client.ErrUnauthorized, 401, "Unauthorized: Invalid token")
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestErrorBodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		retryAfter  string
		sentinel    error
		wantMsg     string
		wantRetry   time.Duration
	}{
		{"html from a proxy", 502, "text/html", "<html>\n  <body>Bad   Gateway</body>\n</html>\n", "", client.ErrServer, "<html> <body>Bad Gateway</body> </html>", 0},
		{"plain text", 500, "text/plain", "internal error: db down\n", "", client.ErrServer, "internal error: db down", 0},
		{"empty body", 503, "", "", "7", client.ErrServer, "Service Unavailable", 7 * time.Second},
		{"json message member", 403, "application/json", `{"status":"error","message":"Access denied"}`, "", client.ErrForbidden, "Access denied", 0},
		{"json without error", 409, "application/json", `{"detail":"x"}`, "", client.ErrConflict, `{"detail":"x"}`, 0},
		{"rate limit with date", 429, "application/json", `{"error":"Rate limit exceeded"}`, "__DATE__", client.ErrRateLimited, "Rate limit exceeded", 0},
		{"long body is shortened", 500, "text/plain", strings.Repeat("é", 2000), "", client.ErrServer, strings.Repeat("é", 256) + "…", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				ra := tc.retryAfter
				if ra == "__DATE__" {
					ra = time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
				}
				if ra != "" {
					w.Header().Set("Retry-After", ra)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			_, err := f.client().Workers(context.Background())
			apiErr := assertAPIError(t, err, tc.sentinel, tc.status, tc.wantMsg)
			if tc.retryAfter == "__DATE__" {
				if apiErr.RetryAfter < 80*time.Second || apiErr.RetryAfter > 91*time.Second {
					t.Errorf("RetryAfter from date = %v", apiErr.RetryAfter)
				}
			} else if apiErr.RetryAfter != tc.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", apiErr.RetryAfter, tc.wantRetry)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  client.Error
		want string
	}{
		{client.Error{StatusCode: 404, Message: "Job not found"}, "404 Not Found: Job not found"},
		{client.Error{StatusCode: 503, Message: "Service Unavailable"}, "503 Service Unavailable"},
		{client.Error{StatusCode: 429, Message: "slow down", RetryAfter: 30 * time.Second}, "429 Too Many Requests: slow down (retry after 30s)"},
		{client.Error{StatusCode: 599}, "599"},
		// What only repeats the status is left out.
		{client.Error{StatusCode: 401, Message: "Unauthorized: Invalid token"}, "401 Unauthorized: Invalid token"},
		{client.Error{StatusCode: 403, Message: "forbidden: no admin token"}, "403 Forbidden: no admin token"},
		{client.Error{StatusCode: 404, Message: "404 page not found"}, "404 Not Found"},
		{client.Error{StatusCode: 404, Message: "Not Found"}, "404 Not Found"},
		{client.Error{StatusCode: 429, Message: "Too Many Requests: 10 requests per 1m0s allowed", RetryAfter: time.Minute},
			"429 Too Many Requests: 10 requests per 1m0s allowed (retry after 1m)"},
		{client.Error{StatusCode: 429, Message: "quota", RetryAfter: 3*time.Hour + 5*time.Minute}, "429 Too Many Requests: quota (retry after 3h5m)"},
		{client.Error{StatusCode: 503, RetryAfter: 1500 * time.Millisecond}, "503 Service Unavailable (retry after 2s)"},
		{client.Error{StatusCode: 409, Message: "409: Replayed message"}, "409 Conflict: Replayed message"},
		// A message that only starts with the same letters is kept.
		{client.Error{StatusCode: 401, Message: "Unauthorizedness"}, "401 Unauthorized: Unauthorizedness"},
		{client.Error{StatusCode: 404, Message: "4040 things"}, "404 Not Found: 4040 things"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestMalformedSuccessBody(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>not json</html>")
	})
	_, err := f.client().Workers(context.Background())
	if err == nil || !strings.Contains(err.Error(), "list workers: decode 200 response") {
		t.Errorf("err = %v", err)
	}
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		t.Errorf("a decode failure is not an *Error: %v", err)
	}
}

func TestNetworkErrorIsWrapped(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more
	c, err := client.New(base, tokenA)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Job(context.Background(), "job-1")
	if err == nil || !strings.Contains(err.Error(), `avtomatika: get job "job-1": Get "`+base+`/api/v1/jobs/job-1"`) {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), tokenA) {
		t.Errorf("error leaks the token: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Workers(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	status := "ok"
	f.handle("GET /_public/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": status})
	})
	c := f.client()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := f.only()
	if r.Method != http.MethodGet || r.Path != "/_public/status" || r.HasToken {
		t.Errorf("ping request %+v", r)
	}
	status = "degraded"
	if err := c.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "degraded") {
		t.Errorf("Ping with degraded status = %v", err)
	}
}

func TestRedirectDropsTokenAcrossOrigins(t *testing.T) {
	t.Parallel()
	other := newFake(t) // a different origin (another port)
	other.handle("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []protocol.WorkerInfo{})
	})
	f := newFake(t)
	f.handle("GET /api/v1/blueprints", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/v1/blueprints/", http.StatusFound) // same origin
	})
	f.handle("GET /api/v1/blueprints/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []protocol.BlueprintInfo{})
	})
	f.handle("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/api/v1/workers", http.StatusFound)
	})
	c := f.client()

	// Same origin: the token follows the redirect.
	if _, err := c.Blueprints(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].EscapedPath != "/api/v1/blueprints/" || reqs[1].Token != tokenA {
		t.Fatalf("same-origin redirect lost the token: %+v", reqs)
	}

	// Another origin: the token stays behind, so the other server says 401.
	_, err := c.Workers(context.Background())
	assertAPIError(t, err, client.ErrUnauthorized, 401, "Missing X-Client-Token header")
	for _, r := range other.requests() {
		if r.HasToken {
			t.Errorf("token sent to another origin: %+v", r)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	jobServer(f, map[string]protocol.Job{"job-1": {ID: "job-1", Status: protocol.StatusRunning}})
	c := f.client()
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := c.Job(context.Background(), "job-1")
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestBaseURLPathPrefix(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /orch/api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []protocol.WorkerInfo{})
	})
	f.handle("GET /orch/_public/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	c, err := client.New(f.srv.URL+"/orch/", tokenA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Workers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if reqs[0].EscapedPath != "/orch/api/v1/workers" || reqs[0].Token != tokenA || reqs[1].EscapedPath != "/orch/_public/status" {
		t.Errorf("requests %+v", reqs)
	}
}
