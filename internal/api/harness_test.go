package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

const (
	vipToken     = "user_token_vip"
	limitedToken = "limited-access-token"
	otherToken   = "other-client-token"
	globalToken  = "global-worker-token"
	gpuToken     = "super-secret-gpu-worker-token"
	adminToken   = "admin-secret"
)

type testServer struct {
	t       testing.TB
	eng     *engine.Engine
	srv     *Server
	http    *httptest.Server
	clients string // path of clients.toml

	mu     sync.Mutex
	events []engine.Event // every engine event, in order
}

// eventCount is the number of engine events so far.
func (ts *testServer) eventCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.events)
}

// demo is a blueprint with a task, an approval and a fan-out.
func demo() *blueprint.Blueprint {
	bp := blueprint.New("demo").Endpoint("v1", "/jobs/demo")
	bp.Start("start", func(c *blueprint.Context) error {
		switch c.Input("mode") {
		case "approval":
			return c.GoTo("ask")
		case "parallel":
			return c.DispatchParallel([]blueprint.Task{{Type: "work", Params: map[string]any{"n": 1}}, {Type: "work", Params: map[string]any{"n": 2}}})
		}
		return c.Dispatch(blueprint.Task{Type: "work", Params: map[string]any{"n": c.Input("n")}})
	}, blueprint.On("success", "finished"), blueprint.To("ask"), blueprint.FanIn("join"))
	bp.State("ask", func(c *blueprint.Context) error {
		return c.AwaitApproval("Please review")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected"))
	bp.Aggregator("join", func(c *blueprint.Context) error {
		_ = c.Set("branches", len(c.Branches()))
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	bp.End("finished", nil)
	bp.End("rejected", nil)
	return bp
}

func newTestServer(t testing.TB, mutate func(*Options)) *testServer {
	t.Helper()
	return newTestServerWith(t, nil, mutate)
}

// newTestServerWith is newTestServer with changes to the engine's
// configuration too.
func newTestServerWith(t testing.TB, tune func(*engine.Config), mutate func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	clientsPath := filepath.Join(dir, "clients.toml")
	writeFile(t, clientsPath, `
[client_vip]
token = "user_token_vip"
plan = "vip"
monthly_attempts = 10000
[limited-client]
token = "limited-access-token"
plan = "basic"
monthly_attempts = 2
[other]
token = "other-client-token"
`)
	list, tokens, err := auth.LoadClients(clientsPath)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := auth.NewClients(list, tokens)
	if err != nil {
		t.Fatal(err)
	}
	workers := auth.NewWorkerTokens(map[string]string{"gpu-worker-01": gpuToken}, globalToken)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := &testServer{t: t, clients: clientsPath}
	cfg := engine.Config{
		Store: memory.New(memory.Options{}), Logger: logger, PollTimeout: 2 * time.Second,
		TimerInterval: 20 * time.Millisecond, RetryBackoff: 10 * time.Millisecond,
		OnEvent: func(ev engine.Event) {
			ts.mu.Lock()
			ts.events = append(ts.events, ev)
			srv := ts.srv
			ts.mu.Unlock()
			if srv != nil {
				srv.OnEvent(ev)
			}
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(demo()); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Engine: eng, Clients: clients, Workers: workers, Logger: logger, AdminToken: adminToken,
		MaxBodyBytes: 64 << 10,
		Reload: func() (int, int, error) {
			list, tokens, err := auth.LoadClients(clientsPath)
			if err != nil {
				return 0, 0, err
			}
			return len(list), workers.Len(), clients.Replace(list, tokens)
		},
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	ts.eng, ts.srv = eng, srv
	ts.mu.Unlock()
	ts.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	return ts
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

func (r response) errorText(t testing.TB) string {
	t.Helper()
	var e protocol.ErrorBody
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("error response without an error message: %s", r.body)
	}
	return e.Error
}

// do sends a request; body may be a string, []byte or a value to encode.
func (ts *testServer) do(method, path string, headers map[string]string, body any) response {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.http.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func client(token string) map[string]string {
	return map[string]string{protocol.HeaderClientToken: token}
}

func (ts *testServer) createJob(token string, data map[string]any) string {
	ts.t.Helper()
	r := ts.do("POST", "/api/v1/jobs/demo", client(token), protocol.CreateJobRequest{InitialData: data})
	if r.status != http.StatusAccepted {
		ts.t.Fatalf("create: %d %s", r.status, r.body)
	}
	var out protocol.CreateJobResponse
	r.json(ts.t, &out)
	if out.Status != "accepted" || out.JobID == "" {
		ts.t.Fatalf("create response %s", r.body)
	}
	return out.JobID
}

func (ts *testServer) job(token, id string) protocol.Job {
	ts.t.Helper()
	r := ts.do("GET", "/api/v1/jobs/"+id, client(token), nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("get job: %d %s", r.status, r.body)
	}
	var j protocol.Job
	r.json(ts.t, &j)
	return j
}

func (ts *testServer) waitJob(id string, cond func(protocol.Job) bool) protocol.Job {
	ts.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := ts.job(vipToken, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("job %s: condition never held; last %+v", id, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// signedWorker sends signed RXON messages the way a worker would.
type signedWorker struct {
	ts    *testServer
	id    string
	token string
	key   string // signing key
	now   func() time.Time
}

func (ts *testServer) worker(id, token string) *signedWorker {
	return &signedWorker{ts: ts, id: id, token: token, key: token, now: time.Now}
}

func (w *signedWorker) headers() map[string]string {
	return map[string]string{protocol.HeaderWorkerToken: w.token, protocol.HeaderWorkerID: w.id, protocol.HeaderVersion: protocol.Version}
}

// sign turns msg into a signed JSON body (timestamp set to now).
func (w *signedWorker) sign(msg any, event bool) []byte {
	w.ts.t.Helper()
	raw, _ := json.Marshal(msg)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["timestamp"] = w.now().Unix()
	delete(m, "security")
	var sig string
	var err error
	if event {
		sig, err = protocol.SignEvent(m, w.key)
	} else {
		sig, err = protocol.Sign(m, w.key)
	}
	if err != nil {
		w.ts.t.Fatal(err)
	}
	m["security"] = map[string]any{"signature": sig, "signer_id": w.id}
	out, _ := json.Marshal(m)
	return out
}

func (w *signedWorker) register(skills ...string) response {
	reg := protocol.Registration{WorkerID: w.id, WorkerType: "test", Capabilities: &protocol.Capabilities{CostPerSkill: map[string]float64{}, WebSockets: true}}
	for _, s := range skills {
		reg.SupportedSkills = append(reg.SupportedSkills, protocol.SkillInfo{Name: s})
		reg.Capabilities.CostPerSkill[s] = 0.001
	}
	return w.ts.do("POST", protocol.PathRegister, w.headers(), w.sign(reg, false))
}

func (w *signedWorker) poll(timeout string) response {
	return w.ts.do("GET", "/_worker/workers/"+w.id+"/tasks/next?timeout="+timeout, w.headers(), nil)
}

func (w *signedWorker) result(jobID, taskID, status string, data map[string]any) response {
	return w.ts.do("POST", protocol.PathResult, w.headers(), w.sign(protocol.TaskResult{
		JobID: jobID, TaskID: taskID, WorkerID: w.id, Status: status, Data: data,
	}, false))
}

// take polls until a task arrives.
func (w *signedWorker) take() protocol.TaskPayload {
	w.ts.t.Helper()
	for range 20 {
		r := w.poll("1")
		if r.status == http.StatusOK {
			var p protocol.TaskPayload
			r.json(w.ts.t, &p)
			return p
		}
		if r.status != http.StatusNoContent {
			w.ts.t.Fatalf("poll: %d %s", r.status, r.body)
		}
	}
	w.ts.t.Fatal("no task arrived")
	return protocol.TaskPayload{}
}
