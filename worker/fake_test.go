package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/coder/websocket"
)

const (
	testToken    = "secret-token"
	testWorkerID = "w1"
)

// received is one signed message the fake orchestrator accepted.
type received struct {
	At   time.Time
	Raw  []byte
	Doc  map[string]any // decoded with plain float64 numbers
	Via  string         // "http" or "ws"
	Hdrs http.Header
}

func (r received) str(key string) string {
	s, _ := r.Doc[key].(string)
	return s
}

// failure is a canned error answer.
type failure struct {
	status     int
	retryAfter string
	body       string
}

// fakeOrch is an in-test orchestrator speaking the worker protocol. It
// verifies every signature with protocol.Verify, rejects replayed signatures
// with 409 like the real one, and records what it receives.
type fakeOrch struct {
	t        *testing.T
	srv      *httptest.Server
	key      string        // master token the worker must sign with
	pollWait time.Duration // longest long poll

	mu            sync.Mutex
	violations    []string
	sigs          map[string]bool
	known         map[string]bool // registered worker ids
	regs          []received
	hbs           []received
	results       []received
	events        []received
	polls         []time.Time
	pollQuery     []string
	pollsInFlight int                  // polls being answered now
	inFlightAt    []int                // polls in flight at each poll's arrival, itself included
	failNext      map[string][]failure // by kind: register, heartbeat, poll, result, event
	cancelIDs     []string             // sent in the next heartbeat answer
	fullSync      bool                 // require_full_sync in the next heartbeat answer
	resultResp    func(res protocol.TaskResult) any
	resultGate    func(res protocol.TaskResult) // runs first, without mu: may hold the answer back
	handOver      bool                          // answer ?next=1 results with a queued task
	resultQuery   []string
	handedOver    int // tasks sent with results
	polledTasks   int // tasks sent to polls
	ws            *websocket.Conn
	access        map[string]bool // issued STS access tokens
	revoked       map[string]bool // access tokens answered with 403
	tokenReqs     int
	changed       chan struct{}

	queue chan protocol.TaskPayload
}

func newFake(t *testing.T) *fakeOrch {
	t.Helper()
	f := &fakeOrch{
		t: t, key: testToken, pollWait: 100 * time.Millisecond,
		sigs: map[string]bool{}, known: map[string]bool{}, failNext: map[string][]failure{},
		access: map[string]bool{}, revoked: map[string]bool{}, changed: make(chan struct{}),
		queue: make(chan protocol.TaskPayload, 100),
	}
	f.srv = httptest.NewServer(f.mux())
	t.Cleanup(f.close)
	return f
}

// newFakeTLS starts a fake behind HTTPS.
func newFakeTLS(t *testing.T) *fakeOrch {
	t.Helper()
	f := &fakeOrch{
		t: t, key: testToken, pollWait: 100 * time.Millisecond,
		sigs: map[string]bool{}, known: map[string]bool{}, failNext: map[string][]failure{},
		access: map[string]bool{}, revoked: map[string]bool{}, changed: make(chan struct{}),
		queue: make(chan protocol.TaskPayload, 100),
	}
	f.srv = httptest.NewTLSServer(f.mux())
	t.Cleanup(f.close)
	return f
}

// newFakeAt starts a fake on a given address (for "comes up later" tests).
func newFakeAt(t *testing.T, addr string) *fakeOrch {
	t.Helper()
	f := &fakeOrch{
		t: t, key: testToken, pollWait: 100 * time.Millisecond,
		sigs: map[string]bool{}, known: map[string]bool{}, failNext: map[string][]failure{},
		access: map[string]bool{}, revoked: map[string]bool{}, changed: make(chan struct{}),
		queue: make(chan protocol.TaskPayload, 100),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	f.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: f.mux()}}
	f.srv.Start()
	t.Cleanup(f.close)
	return f
}

func (f *fakeOrch) close() {
	f.mu.Lock()
	ws := f.ws
	v := f.violations
	f.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
	f.srv.CloseClientConnections()
	f.srv.Close()
	for _, s := range v {
		f.t.Errorf("fake orchestrator: %s", s)
	}
}

func (f *fakeOrch) URL() string { return f.srv.URL }

func (f *fakeOrch) violation(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

// notify wakes waitUntil callers.
func (f *fakeOrch) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeOrch) fail(kind string, n int, fl failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failNext[kind] = append(f.failNext[kind], fl)
	}
}

func (f *fakeOrch) takeFailure(kind string) (failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.failNext[kind]
	if len(q) == 0 {
		return failure{}, false
	}
	f.failNext[kind] = q[1:]
	return q[0], true
}

func (f *fakeOrch) enqueue(tasks ...protocol.TaskPayload) {
	for _, p := range tasks {
		if p.Params == nil {
			p.Params = map[string]any{}
		}
		if p.JobID == "" {
			p.JobID = "job-" + p.TaskID
		}
		f.queue <- p
	}
}

// forget drops the worker's registration, as an expired record would.
func (f *fakeOrch) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.known, id)
}

func (f *fakeOrch) snapshot() (regs, hbs, results, events []received) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.regs...), append([]received(nil), f.hbs...),
		append([]received(nil), f.results...), append([]received(nil), f.events...)
}

func (f *fakeOrch) resultFor(taskID string) (received, bool) {
	_, _, results, _ := f.snapshot()
	for _, r := range results {
		if r.str("task_id") == taskID {
			return r, true
		}
	}
	return received{}, false
}

// waitUntil waits for cond over the fake's state, failing the test after d.
func (f *fakeOrch) waitUntil(d time.Duration, what string, cond func() bool) {
	f.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline.C:
			f.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func (f *fakeOrch) waitResult(taskID string) received {
	f.t.Helper()
	var r received
	f.waitUntil(5*time.Second, "the result of "+taskID, func() bool {
		var ok bool
		r, ok = f.resultFor(taskID)
		return ok
	})
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFailure(w http.ResponseWriter, fl failure) {
	if fl.retryAfter != "" {
		w.Header().Set("Retry-After", fl.retryAfter)
	}
	body := fl.body
	if body == "" {
		body = http.StatusText(fl.status)
	}
	writeJSON(w, fl.status, protocol.ErrorBody{Error: body})
}

// authorized answers 403 for a revoked access token, like an orchestrator
// that lost its STS state.
func (f *fakeOrch) authorized(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	revoked := f.revoked[r.Header.Get(protocol.HeaderWorkerToken)]
	f.mu.Unlock()
	if revoked {
		writeJSON(w, 403, protocol.ErrorBody{Error: "Unauthorized: invalid or expired access token"})
	}
	return !revoked
}

// checkHeaders checks the common headers and returns the worker id.
func (f *fakeOrch) checkHeaders(r *http.Request) string {
	id := r.Header.Get(protocol.HeaderWorkerID)
	if id == "" {
		f.violation("%s %s without %s", r.Method, r.URL.Path, protocol.HeaderWorkerID)
	}
	if v := r.Header.Get(protocol.HeaderVersion); v != protocol.Version {
		f.violation("%s %s: %s = %q", r.Method, r.URL.Path, protocol.HeaderVersion, v)
	}
	tok := r.Header.Get(protocol.HeaderWorkerToken)
	f.mu.Lock()
	okTok := tok == f.key || f.access[tok] || f.revoked[tok]
	f.mu.Unlock()
	if !okTok {
		f.violation("%s %s: unexpected %s", r.Method, r.URL.Path, protocol.HeaderWorkerToken)
	}
	return id
}

// verify checks a signed body like the orchestrator does and records
// protocol violations (bad signature, non-integer timestamp, null members).
func (f *fakeOrch) verify(raw []byte, id string, event bool) (map[string]any, error) {
	if err := protocol.Verify(raw, protocol.VerifyOptions{Key: f.key, WorkerID: id, Event: event}); err != nil {
		f.violation("signature check failed: %v: %s", err, raw)
		return nil, err
	}
	doc, err := protocol.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	m := doc.(map[string]any)
	if ts, ok := m["timestamp"].(json.Number); !ok || strings.ContainsAny(string(ts), ".eE") {
		f.violation("timestamp is not an integer: %v", m["timestamp"])
	}
	if path := findNull(m, ""); path != "" {
		f.violation("null member %s in %s", path, raw)
	}
	var plain map[string]any
	_ = json.Unmarshal(raw, &plain)
	return plain, nil
}

func findNull(v any, path string) string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				return path + "." + k
			}
			if p := findNull(e, path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := findNull(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// replayed reports whether the signature of raw was seen before (409).
func (f *fakeOrch) replayed(raw []byte) bool {
	var env protocol.Envelope
	_ = json.Unmarshal(raw, &env)
	if env.Security == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sigs[env.Security.Signature] {
		f.violations = append(f.violations, "replayed signature: "+string(raw))
		return true
	}
	f.sigs[env.Security.Signature] = true
	return false
}

// signedBody reads, verifies and de-duplicates a signed body; it writes the
// error answer itself and returns ok=false then.
func (f *fakeOrch) signedBody(w http.ResponseWriter, r *http.Request, event bool) (received, bool) {
	id := f.checkHeaders(r)
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, 400, protocol.ErrorBody{Error: err.Error()})
		return received{}, false
	}
	doc, err := f.verify(raw, id, event)
	if err != nil {
		writeJSON(w, 403, protocol.ErrorBody{Error: err.Error()})
		return received{}, false
	}
	if f.replayed(raw) {
		writeJSON(w, 409, protocol.ErrorBody{Error: "replayed message"})
		return received{}, false
	}
	return received{At: time.Now(), Raw: raw, Doc: doc, Via: "http", Hdrs: r.Header.Clone()}, true
}

func (f *fakeOrch) mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathRegister, func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		if fl, ok := f.takeFailure("register"); ok {
			f.mu.Lock()
			f.regs = append(f.regs, received{At: time.Now(), Doc: map[string]any{"failed": fl.status}})
			f.notifyLocked()
			f.mu.Unlock()
			writeFailure(w, fl)
			return
		}
		rec, ok := f.signedBody(w, r, false)
		if !ok {
			return
		}
		f.mu.Lock()
		f.regs = append(f.regs, rec)
		f.known[rec.str("worker_id")] = true
		f.notifyLocked()
		f.mu.Unlock()
		writeJSON(w, 200, protocol.RegisterResponse{Status: "registered", Version: protocol.Version})
	})
	mux.HandleFunc("PATCH /_worker/workers/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		id := r.PathValue("id")
		f.mu.Lock()
		known := f.known[id]
		f.mu.Unlock()
		if !known {
			io.Copy(io.Discard, r.Body)
			writeJSON(w, 404, protocol.ErrorBody{Error: "worker " + id + " is not registered: register again"})
			return
		}
		if fl, ok := f.takeFailure("heartbeat"); ok {
			writeFailure(w, fl)
			return
		}
		rec, ok := f.signedBody(w, r, false)
		if !ok {
			return
		}
		f.mu.Lock()
		f.hbs = append(f.hbs, rec)
		resp := protocol.HeartbeatResponse{Status: "ok", CancelTaskIDs: f.cancelIDs, RequireFullSync: f.fullSync}
		f.cancelIDs, f.fullSync = nil, false
		f.notifyLocked()
		f.mu.Unlock()
		writeJSON(w, 200, resp)
	})
	mux.HandleFunc("GET /_worker/workers/{id}/tasks/next", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		id := r.PathValue("id")
		f.checkHeaders(r)
		f.mu.Lock()
		f.polls = append(f.polls, time.Now())
		f.pollQuery = append(f.pollQuery, r.URL.RawQuery)
		f.pollsInFlight++
		f.inFlightAt = append(f.inFlightAt, f.pollsInFlight)
		defer func() { f.mu.Lock(); f.pollsInFlight--; f.mu.Unlock() }()
		known := f.known[id]
		f.notifyLocked()
		f.mu.Unlock()
		if !known {
			writeJSON(w, 404, protocol.ErrorBody{Error: "worker " + id + " is not registered: register again"})
			return
		}
		if fl, ok := f.takeFailure("poll"); ok {
			writeFailure(w, fl)
			return
		}
		t := time.NewTimer(f.pollWait)
		defer t.Stop()
		select {
		case p := <-f.queue:
			f.mu.Lock()
			f.polledTasks++
			f.mu.Unlock()
			writeJSON(w, 200, p)
		case <-t.C:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST "+protocol.PathResult, func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		if fl, ok := f.takeFailure("result"); ok {
			// The message is verified (and its signature remembered) first,
			// as a real orchestrator failing later would.
			if _, ok := f.signedBody(w, r, false); !ok {
				return
			}
			writeFailure(w, fl)
			return
		}
		rec, ok := f.signedBody(w, r, false)
		if !ok {
			return
		}
		var res protocol.TaskResult
		_ = json.Unmarshal(rec.Raw, &res)
		if f.resultGate != nil {
			f.resultGate(res)
		}
		f.mu.Lock()
		f.results = append(f.results, rec)
		f.resultQuery = append(f.resultQuery, r.URL.RawQuery)
		rr := protocol.ResultResponse{Status: "accepted", Transition: "success_transition"}
		if f.handOver && r.URL.Query().Get(protocol.QueryNext) == "1" {
			select {
			case p := <-f.queue:
				rr.NextTask = &p
				f.handedOver++
			default:
			}
		}
		resp := any(rr)
		if f.resultResp != nil {
			resp = f.resultResp(res)
		}
		f.notifyLocked()
		f.mu.Unlock()
		writeJSON(w, 200, resp)
	})
	mux.HandleFunc("POST "+protocol.PathEvents, func(w http.ResponseWriter, r *http.Request) {
		if fl, ok := f.takeFailure("event"); ok {
			writeFailure(w, fl)
			return
		}
		rec, ok := f.signedBody(w, r, true)
		if !ok {
			return
		}
		f.mu.Lock()
		f.events = append(f.events, rec)
		f.notifyLocked()
		f.mu.Unlock()
		writeJSON(w, 200, map[string]string{"status": "event_accepted"})
	})
	issue := func(w http.ResponseWriter, r *http.Request) {
		f.checkHeaders(r)
		f.mu.Lock()
		f.tokenReqs++
		tok := fmt.Sprintf("access-%d", f.tokenReqs)
		f.access[tok] = true
		f.notifyLocked()
		f.mu.Unlock()
		writeJSON(w, 200, protocol.TokenResponse{AccessToken: tok, RefreshToken: "refresh-" + tok, ExpiresIn: 3600, WorkerID: r.Header.Get(protocol.HeaderWorkerID)})
	}
	mux.HandleFunc("POST "+protocol.PathToken, issue)
	mux.HandleFunc("POST "+protocol.PathTokenRefresh, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !strings.HasPrefix(body.RefreshToken, "refresh-access-") {
			writeJSON(w, 403, protocol.ErrorBody{Error: "invalid refresh token"})
			return
		}
		issue(w, r)
	})
	mux.HandleFunc("GET /_worker/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.checkHeaders(r)
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.ws = ws
		f.notifyLocked()
		f.mu.Unlock()
		id := r.PathValue("id")
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				f.mu.Lock()
				if f.ws == ws {
					f.ws = nil
				}
				f.mu.Unlock()
				return
			}
			doc, err := f.verify(data, id, true)
			if err != nil || f.replayed(data) {
				continue
			}
			f.mu.Lock()
			f.events = append(f.events, received{At: time.Now(), Raw: data, Doc: doc, Via: "ws"})
			f.notifyLocked()
			f.mu.Unlock()
		}
	})
	return mux
}

// command sends a command over the worker's WebSocket.
func (f *fakeOrch) command(cmd protocol.Command) {
	f.t.Helper()
	f.mu.Lock()
	ws := f.ws
	f.mu.Unlock()
	if ws == nil {
		f.t.Fatal("no WebSocket connected")
	}
	raw, _ := json.Marshal(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, raw); err != nil {
		f.t.Fatalf("write command: %v", err)
	}
}

// testLogger discards logs unless WORKER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a fast configuration against the given orchestrators.
func testConfig(urls ...string) Config {
	cfg := Config{
		ID:                 testWorkerID,
		Token:              testToken,
		MaxConcurrentTasks: 2,
		Resources:          Resources{DisableDetection: true, CPUCores: 4, RAMGB: 8},
		Logger:             testLogger(),
		HeartbeatInterval:  200 * time.Millisecond,
		HeartbeatDebounce:  5 * time.Millisecond,
		HeartbeatCooldown:  20 * time.Millisecond,
		PollTimeout:        time.Second,
		IdlePollDelay:      time.Millisecond,
		PollErrorDelay:     20 * time.Millisecond,
		PollBackoffMax:     200 * time.Millisecond,
		RetryDelay:         20 * time.Millisecond,
		RetryMaxDelay:      200 * time.Millisecond,
		RateLimitFloor:     300 * time.Millisecond,
		ResultRetryDelay:   20 * time.Millisecond,
		ShutdownTimeout:    2 * time.Second,
		RequestTimeout:     2 * time.Second,
	}
	for _, u := range urls {
		cfg.Orchestrators = append(cfg.Orchestrators, Orchestrator{URL: u})
	}
	return cfg
}

// running is a worker running in the background of a test.
type runningWorker struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startWorker(t *testing.T, w *Worker) *runningWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		if err := rw.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return rw
}

// stop cancels Run's context and waits for Run to return.
func (rw *runningWorker) stop() error {
	rw.once.Do(func() {
		rw.cancel()
		select {
		case rw.err = <-rw.done:
		case <-time.After(15 * time.Second):
			rw.err = fmt.Errorf("Run did not return within 15s")
		}
	})
	return rw.err
}

func newWorker(t *testing.T, cfg Config) *Worker {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

func task(id, typ string, params map[string]any) protocol.TaskPayload {
	return protocol.TaskPayload{TaskID: id, Type: typ, Params: params, Attempt: 1}
}

func echo(_ context.Context, t *Task) (Result, error) {
	return Result{Data: t.Params()}, nil
}
