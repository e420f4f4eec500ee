package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// stalledRequest opens a connection, sends a request's head announcing a
// big body and only the first bytes of that body, and returns the
// connection with a reader for the answer.
func stalledRequest(t *testing.T, addr, method, path string, headers map[string]string, length int, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, length)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + first)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// closedByPeer tells a connection the server closed: EOF, or a reset when
// it closed with bytes of ours unread.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// answer reads the response on a stalled connection, waiting at most wait.
func answer(t *testing.T, c net.Conn, rd *bufio.Reader, wait time.Duration) (*http.Response, protocol.ErrorBody) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer within %s while the body is still missing: %v", wait, err)
	}
	defer resp.Body.Close()
	var e protocol.ErrorBody
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
		t.Fatalf("%d without a JSON error: %q", resp.StatusCode, raw)
	}
	return resp, e
}

// A body that trickles in is cut off at the body timeout: 408, and the
// connection is closed. Authenticated clients and workers are no exception.
func TestStalledBodyTimesOut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *Options) { o.BodyTimeout = 300 * time.Millisecond })
	addr := strings.TrimPrefix(ts.http.URL, "http://")
	ts.worker("w1", globalToken).register("work")
	for name, tc := range map[string]struct {
		method, path string
		headers      map[string]string
	}{
		"worker result": {"POST", protocol.PathResult, ts.worker("w1", globalToken).headers()},
		"create job":    {"POST", "/api/v1/jobs/demo", client(vipToken)},
	} {
		t.Run(name, func(t *testing.T) {
			before := ts.settle()
			c, rd := stalledRequest(t, addr, tc.method, tc.path, tc.headers, 60_000, "{")
			stop := make(chan struct{})
			defer close(stop)
			go func() { // one byte every 100 ms, as a slow-loris client sends
				for range 200 {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			start := time.Now()
			resp, e := answer(t, c, rd, 15*time.Second)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(e.Error, "REQUEST_BODY_TIMEOUT") {
				t.Fatalf("%d %q, want 408 naming REQUEST_BODY_TIMEOUT", resp.StatusCode, e.Error)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("cut off after %s", d)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := rd.ReadByte(); !closedByPeer(err) {
				t.Fatalf("the connection stays open after the timeout: %v", err)
			}
			if n := ts.eventCount(); n != before {
				t.Fatalf("a timed-out request changed something: %d events, before %d", n, before)
			}
		})
	}
}

// Once the body is in, its deadline is gone: the server's watch of the
// connection must not cancel a handler that runs past it.
func TestBodyDeadlineClearedAfterRead(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *Options) { o.BodyTimeout = 100 * time.Millisecond })
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ts.srv.readBody(w, r); !ok {
			got <- errors.New("body not read")
			return
		}
		select {
		case <-r.Context().Done():
			got <- fmt.Errorf("request cancelled after its body was read: %w", context.Cause(r.Context()))
		case <-time.After(500 * time.Millisecond):
			got <- nil
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// The body buffer grows with the bytes that arrive, not with what
// Content-Length announces.
func TestBodyBufferGrowsWithData(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	const announced = 64 << 10 // the harness's body limit
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 50
	for range n {
		req := httptest.NewRequest("POST", "/x", strings.NewReader(`{"a":1}`))
		req.ContentLength = announced
		rec := httptest.NewRecorder()
		if _, ok := ts.srv.readBody(rec, req); !ok {
			t.Fatalf("readBody: %d %s", rec.Code, rec.Body)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= announced/2 {
		t.Fatalf("%d bytes allocated per 7-byte body announced as %d bytes", per, announced)
	}
}

func TestInvalidUTF8BodyRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	w.register("work")
	id := ts.createJob(vipToken, map[string]any{"n": 1})
	task := w.take()
	badData := []byte(`{"initial_data":{"name":"caf` + "\xe9" + `"}}`)
	surrogate := `{"initial_data":{"name":"\ud800x"}}`
	signedBad := w.sign(protocol.TaskResult{JobID: id, TaskID: task.TaskID, WorkerID: "w1", Status: "success", Data: map[string]any{"v": "PLACEHOLDER"}}, false)
	signedBad = []byte(strings.Replace(string(signedBad), "PLACEHOLDER", "\xff\xfe", 1))
	before := ts.settle()
	for name, tc := range map[string]struct {
		method, path string
		headers      map[string]string
		body         []byte
		msg          string
	}{
		"create job, raw bytes":        {"POST", "/api/v1/jobs/demo", client(vipToken), badData, "not valid UTF-8 (invalid byte 0xe9 at offset 28)"},
		"create job, lone surrogate":   {"POST", "/api/v1/jobs/demo", client(vipToken), []byte(surrogate), "unpaired UTF-16 surrogate"},
		"approve":                      {"POST", "/api/v1/jobs/" + id + "/approve", client(vipToken), []byte(`{"decision":"` + "\xc3" + `"}`), "not valid UTF-8"},
		"worker result":                {"POST", protocol.PathResult, w.headers(), signedBad, "not valid UTF-8"},
		"worker event, lone surrogate": {"POST", protocol.PathEvents, w.headers(), []byte(`{"event_type":"progress","job_id":"` + id + `","payload":{"m":"\udc00"}}`), "surrogate"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do(tc.method, tc.path, tc.headers, tc.body)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("%d %s, want 400 with %q", r.status, r.body, tc.msg)
			}
		})
	}
	if n := ts.eventCount(); n != before {
		t.Fatalf("refused bodies changed something: %d events, before %d", n, before)
	}
	// Paired surrogates and other escapes are fine.
	if r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), `{"initial_data":{"s":"\ud83d\ude00 \\ud800 \u00e9"}}`); r.status != http.StatusAccepted {
		t.Fatalf("valid escapes refused: %d %s", r.status, r.body)
	}
	if r := w.result(id, task.TaskID, "success", map[string]any{"v": "ok ✓"}); r.status != http.StatusOK {
		t.Fatalf("a valid result after the refused one: %d %s", r.status, r.body)
	}
}

func TestCheckSurrogates(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"a":"\ud83d\ude00"}`: true, `{"a":"\\ud800"}`: true, `{"a":"\u0041\ud800"}`: false, `{"a":"\ud800\u0041"}`: false,
		`{"a":"\ud800"}`: false, `{"a":"\udc00\ud800"}`: false, `{"\ud800":1}`: false, `{"a":"\ud800\n"}`: false, `{"a":"x\\\udc00"}`: false,
		`{"a":"\ud800\ud800\udc00"}`: false, `{"a":"\u12"}`: true, `{"a":"\uZZZZ"}`: true,
	} {
		if err := checkSurrogates([]byte(body)); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", body, err, ok)
		}
	}
}

// NUL bytes, other control characters, invalid UTF-8 and malformed queries
// in a path or query are refused with 400 before any route runs.
func TestInvalidPathAndQueryRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	w.register("work")
	id := ts.createJob(vipToken, nil)
	before := ts.settle()
	for name, tc := range map[string]struct {
		method, path string
		headers      map[string]string
		msg          string
	}{
		"NUL in a job id":           {"GET", "/api/v1/jobs/" + id + "%00", client(vipToken), "NUL"},
		"NUL in a history job id":   {"GET", "/api/v1/jobs/%00/history", client(vipToken), "NUL"},
		"NUL in cancel":             {"POST", "/api/v1/jobs/" + id + "%00/cancel", client(vipToken), "NUL"},
		"invalid UTF-8 in a job id": {"GET", "/api/v1/jobs/%ff", client(vipToken), "UTF-8"},
		"NUL in status":             {"GET", "/api/v1/jobs?status=%00", client(vipToken), `"status"`},
		"NUL in the cursor":         {"GET", "/api/v1/jobs?cursor=a%00b", client(vipToken), `"cursor"`},
		"control char in blueprint": {"GET", "/api/v1/jobs?blueprint=a%01", client(vipToken), "U+0001"},
		"invalid UTF-8 in a filter": {"GET", "/api/v1/jobs?blueprint=%c3", client(vipToken), "UTF-8"},
		"malformed query":           {"GET", "/api/v1/jobs?limit=%zz", client(vipToken), "invalid query"},
		"NUL in a parameter name":   {"GET", "/api/v1/jobs?a%00=1", client(vipToken), "name"},
		"NUL in fields":             {"GET", "/api/v1/jobs/" + id + "?fields=%00", client(vipToken), `"fields"`},
		"NUL in a worker path":      {"GET", "/_worker/workers/w1%00/tasks/next?timeout=0", w.headers(), "NUL"},
		"NUL in a file name":        {"GET", "/api/v1/jobs/" + id + "/files/upload?filename=a%00", client(vipToken), `"filename"`},
		"NUL in the admin job id":   {"GET", "/api/v1/admin/jobs/%00", map[string]string{protocol.HeaderAdminToken: adminToken}, "NUL"},
		"invalid UTF-8 worker id":   {"GET", "/_worker/workers/w1/tasks/next?timeout=0", map[string]string{protocol.HeaderWorkerToken: globalToken, protocol.HeaderWorkerID: "w\xff"}, "X-Worker-ID"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do(tc.method, tc.path, tc.headers, nil)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("%d %s, want 400 with %q", r.status, r.body, tc.msg)
			}
		})
	}
	if n := ts.eventCount(); n != before {
		t.Fatalf("refused requests changed something: %d events, before %d", n, before)
	}
	if j := ts.job(vipToken, id); j.Status.Terminal() {
		t.Fatalf("the job was changed: %s", j.Status)
	}
}

// settle waits until the engine has had no event for a moment (a job's
// first steps run in the background) and returns the number of events.
func (ts *testServer) settle() int {
	n := ts.eventCount()
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		m := ts.eventCount()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// serveHardened serves the test server's handler behind Harden.
func serveHardened(t *testing.T, ts *testServer, lim Limits) (addr string, ll *limitListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ts.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	hl := Harden(srv, ln, lim)
	go func() { _ = srv.Serve(hl) }()
	t.Cleanup(func() { _ = srv.Close() })
	ll, _ = hl.(*limitListener)
	return ln.Addr().String(), ll
}

func rawGet(t *testing.T, c net.Conn, path string, wait time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return nil, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body, nil
}

func waitOpen(t *testing.T, ll *limitListener, ip string, n int) {
	t.Helper()
	for range 500 {
		if ll.open(ip) == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s holds %d connections, want %d", ip, ll.open(ip), n)
}

func TestConnectionsPerIPLimited(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	addr, ll := serveHardened(t, ts, Limits{MaxConnections: -1, MaxConnectionsPerIP: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitOpen(t, ll, "127.0.0.1", 2)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, body, err := rawGet(t, c, protocol.PublicStatus, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"error":"Too many open connections`) {
		t.Fatalf("over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !closedByPeer(err) {
		t.Fatalf("the connection over the limit stays open: %v", err)
	}
	held[0].Close()
	waitOpen(t, ll, "127.0.0.1", 1)
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if resp, body, err := rawGet(t, c2, protocol.PublicStatus, 5*time.Second); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a connection closed: %v %v %s", err, resp, body)
	}
}

func TestConnectionsInTotalLimited(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	addr, ll := serveHardened(t, ts, Limits{MaxConnections: 2, MaxConnectionsPerIP: -1})
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitOpen(t, ll, "127.0.0.1", 2)
	c, err := net.Dial("tcp", addr) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan int, 1)
	go func() {
		resp, _, err := rawGet(t, c, protocol.PublicStatus, 20*time.Second)
		if err != nil {
			got <- -1
			return
		}
		got <- resp.StatusCode
	}()
	select {
	case code := <-got:
		t.Fatalf("answered (%d) while the server was full", code)
	case <-time.After(300 * time.Millisecond):
	}
	a.Close()
	select {
	case code := <-got:
		if code != http.StatusOK {
			t.Fatalf("after a slot freed: %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a waiting connection was not served once a slot freed")
	}
}
