package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

const poll = 2 * time.Millisecond

// step is one answer of the scripted job route: a job, or an error status.
type step struct {
	job        protocol.Job
	status     int    // non-zero: answer this status with body
	body       string // error body (JSON unless it does not start with '{')
	retryAfter string
	hangup     bool // close the connection without an answer
}

// scriptedJob serves GET /api/v1/jobs/{id} from a script, repeating the
// last step once it runs out, and returns a function reporting how many
// polls it answered.
func scriptedJob(f *fake, id string, script []step) func() int {
	var mu sync.Mutex
	n := 0
	f.handle("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != id {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Job not found"})
			return
		}
		mu.Lock()
		s := script[min(n, len(script)-1)]
		n++
		mu.Unlock()
		switch {
		case s.hangup:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case s.status != 0:
			if s.retryAfter != "" {
				w.Header().Set("Retry-After", s.retryAfter)
			}
			if strings.HasPrefix(s.body, "{") {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(s.status)
			_, _ = w.Write([]byte(s.body))
		default:
			writeJSON(w, http.StatusOK, s.job)
		}
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func running(p float64, msg string) step {
	return step{job: protocol.Job{ID: "job-1", Status: protocol.StatusRunning, CurrentState: "work", Progress: p, ProgressMessage: msg}}
}

func TestWaitReportsProgressUntilTerminal(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	done := protocol.Job{ID: "job-1", Status: protocol.StatusFinished, CurrentState: "finished", Progress: 1,
		StateHistory: map[string]any{"analysis_summary": "ok"}, Result: map[string]any{"ok": true}}
	polls := scriptedJob(f, "job-1", []step{
		{job: protocol.Job{ID: "job-1", Status: protocol.StatusPending}},
		running(0.3, "transcoding"),
		{status: http.StatusServiceUnavailable, body: `{"error":"storage unavailable"}`},
		running(0.3, "transcoding"),                    // unchanged: no callback
		{hangup: true}, {hangup: true}, {hangup: true}, // the transport retries one on a reused connection
		running(0.7, "analysing"),
		{job: done},
	})
	var seen []string
	job, err := f.client().Wait(context.Background(), "job-1", client.PollEvery(poll),
		client.OnProgress(func(j *protocol.Job) {
			seen = append(seen, string(j.Status)+"/"+j.ProgressMessage)
		}))
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != protocol.StatusFinished || job.StateHistory["analysis_summary"] != "ok" || job.Result == nil {
		t.Errorf("final job = %+v", job)
	}
	want := []string{"pending/", "running/transcoding", "running/analysing", "finished/"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("progress callbacks = %q, want %q", seen, want)
	}
	if n := polls(); n != 9 {
		t.Errorf("%d polls, want 9", n)
	}
	for _, r := range f.requests() {
		if r.Method == http.MethodGet && r.EscapedPath == "/api/v1/jobs/job-1" && r.Token != tokenA {
			t.Errorf("poll without token: %+v", r)
		}
	}
}

// failingTransport fails the requests whose (1-based) numbers are in fail
// like a broken network would, and passes the others on.
type failingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    int
	fail map[int]bool
}

func (ft *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.mu.Lock()
	ft.n++
	fail := ft.fail[ft.n]
	ft.mu.Unlock()
	if fail {
		return nil, errors.New("read tcp: connection reset by peer")
	}
	return ft.next.RoundTrip(r)
}

func TestWaitToleratesNetworkErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	polls := scriptedJob(f, "job-1", []step{running(0.2, ""), running(0.4, ""), {job: protocol.Job{ID: "job-1", Status: protocol.StatusFailed}}})
	ft := &failingTransport{next: f.srv.Client().Transport, fail: map[int]bool{2: true, 3: true, 4: true}}
	c := f.client(client.WithHTTPClient(&http.Client{Transport: ft}))
	job, err := c.Wait(context.Background(), "job-1", client.PollEvery(poll))
	if err != nil || job.Status != protocol.StatusFailed {
		t.Fatalf("Wait = %+v, %v", job, err)
	}
	if polls() != 3 || ft.n != 6 {
		t.Errorf("%d polls served of %d sent, want 3 of 6", polls(), ft.n)
	}

	// Too many in a row: the network error comes back, wrapped.
	ft = &failingTransport{next: f.srv.Client().Transport, fail: map[int]bool{1: true, 2: true, 3: true}}
	c = f.client(client.WithHTTPClient(&http.Client{Transport: ft}))
	_, err = c.Wait(context.Background(), "job-1", client.PollEvery(poll), client.MaxRetries(2))
	if err == nil || !strings.Contains(err.Error(), "after 3 consecutive failures") || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Errorf("err = %v", err)
	}
}

func TestWaitAlreadyTerminal(t *testing.T) {
	t.Parallel()
	for _, st := range []protocol.JobStatus{protocol.StatusFinished, protocol.StatusFailed, protocol.StatusCancelled,
		protocol.StatusError, protocol.StatusQuarantined} {
		f := newFake(t)
		polls := scriptedJob(f, "job-1", []step{{job: protocol.Job{ID: "job-1", Status: st, ErrorMessage: "x"}}})
		calls := 0
		job, err := f.client().Wait(context.Background(), "job-1", client.OnProgress(func(*protocol.Job) { calls++ }))
		if err != nil || job.Status != st {
			t.Errorf("%s: Wait = %+v, %v", st, job, err)
		}
		if polls() != 1 || calls != 1 {
			t.Errorf("%s: %d polls, %d callbacks, want 1 and 1", st, polls(), calls)
		}
	}
}

func TestWaitGivesUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	polls := scriptedJob(f, "job-1", []step{
		running(0.1, ""),
		{status: http.StatusBadGateway, body: "<html>bad gateway</html>"},
	})
	_, err := f.client().Wait(context.Background(), "job-1", client.PollEvery(poll), client.MaxRetries(2))
	var apiErr *client.Error
	if !errors.Is(err, client.ErrServer) || !errors.As(err, &apiErr) || apiErr.Message != "<html>bad gateway</html>" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), `wait for job "job-1"`) || !strings.Contains(err.Error(), "after 3 consecutive failures") {
		t.Errorf("err = %v", err)
	}
	if n := polls(); n != 4 { // one success, then 1 + 2 retries
		t.Errorf("%d polls, want 4", n)
	}

	// MaxRetries(0): the first failure ends Wait.
	f = newFake(t)
	polls = scriptedJob(f, "job-1", []step{{status: http.StatusInternalServerError, body: `{"error":"boom"}`}})
	if _, err := f.client().Wait(context.Background(), "job-1", client.MaxRetries(0)); !errors.Is(err, client.ErrServer) {
		t.Errorf("err = %v", err)
	}
	if polls() != 1 {
		t.Errorf("%d polls, want 1", polls())
	}
}

func TestWaitStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		s        step
		sentinel error
	}{
		{"not found", step{status: 404, body: `{"error":"Job not found"}`}, client.ErrNotFound},
		{"unauthorized", step{status: 401, body: `{"error":"Unauthorized: Invalid token"}`}, client.ErrUnauthorized},
		{"not implemented", step{status: 501, body: `{"error":"nope"}`}, client.ErrServer},
		{"429 without Retry-After", step{status: 429, body: `{"error":"Quota exceeded"}`}, client.ErrRateLimited},
		{"429 for an hour", step{status: 429, body: `{"error":"Quota exceeded"}`, retryAfter: "3600"}, client.ErrRateLimited},
		{"503 for an hour", step{status: 503, body: `{"error":"maintenance"}`, retryAfter: "3600"}, client.ErrServer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			polls := scriptedJob(f, "job-1", []step{running(0, ""), tc.s})
			start := time.Now()
			_, err := f.client().Wait(context.Background(), "job-1", client.PollEvery(poll))
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			if polls() != 2 {
				t.Errorf("%d polls, want 2", polls())
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("Wait took %v", time.Since(start))
			}
		})
	}
}

func TestWaitHonoursShortRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	scriptedJob(f, "job-1", []step{
		{status: 429, body: `{"error":"Rate limit exceeded"}`, retryAfter: "1"},
		{job: protocol.Job{ID: "job-1", Status: protocol.StatusFinished}},
	})
	start := time.Now()
	job, err := f.client().Wait(context.Background(), "job-1", client.PollEvery(poll))
	if err != nil || job.Status != protocol.StatusFinished {
		t.Fatalf("Wait = %+v, %v", job, err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Wait retried after %v, before the server's Retry-After of 1s", d)
	}
}

func TestWaitContextCancellation(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	polls := scriptedJob(f, "job-1", []step{running(0.5, "forever")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(30 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	job, err := f.client().Wait(ctx, "job-1", client.PollEvery(poll))
	if !errors.Is(err, context.Canceled) || job != nil {
		t.Fatalf("Wait = %+v, %v; want nil, context.Canceled", job, err)
	}
	if !strings.Contains(err.Error(), `wait for job "job-1" (last status running)`) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait returned %v after start", d)
	}
	if polls() < 2 {
		t.Errorf("%d polls before cancellation", polls())
	}

	// A deadline ends a long sleep between polls, and Wait never calls back
	// after it has returned.
	var mu sync.Mutex
	returned := false
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	_, err = f.client().Wait(ctx2, "job-1", client.PollEvery(time.Hour), client.OnProgress(func(*protocol.Job) {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			t.Error("callback after Wait returned")
		}
	}))
	mu.Lock()
	returned = true
	mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestWaitRefusesBadArguments(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	polls := scriptedJob(f, "job-1", []step{running(0, "")})
	for _, id := range []string{"", ".."} {
		if _, err := f.client().Wait(context.Background(), id); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Wait(%q) = %v", id, err)
		}
	}
	//lint:ignore SA1012 testing the nil-context guard
	if _, err := f.client().Wait(nil, "job-1"); !errors.Is(err, client.ErrInvalid) { //nolint:staticcheck
		t.Errorf("Wait(nil ctx) = %v", err)
	}
	if polls() != 0 {
		t.Errorf("%d polls", polls())
	}
}
