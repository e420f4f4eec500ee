package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestRegistrationChecks(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	gpu := ts.worker("gpu-worker-01", gpuToken)
	if r := gpu.register("work"); r.status != 200 || !strings.Contains(string(r.body), `"registered"`) || r.header.Get(protocol.HeaderVersion) != protocol.Version {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	valid := gpu.sign(protocol.Registration{WorkerID: "gpu-worker-01"}, false)
	stale := ts.worker("gpu-worker-01", gpuToken)
	stale.now = func() time.Time { return time.Now().Add(-61 * time.Second) }
	future := ts.worker("gpu-worker-01", gpuToken)
	future.now = func() time.Time { return time.Now().Add(100 * time.Second) }
	wrongKey := ts.worker("gpu-worker-01", gpuToken)
	wrongKey.key = "not-the-token"
	globalForIndividual := ts.worker("gpu-worker-01", globalToken)

	var tampered map[string]any
	_ = json.Unmarshal(gpu.sign(protocol.Registration{WorkerID: "gpu-worker-01", WorkerType: "a"}, false), &tampered)
	tampered["worker_type"] = "b"

	hdr := gpu.headers()
	if r := ts.do("POST", protocol.PathRegister, hdr, valid); r.status != 200 {
		t.Fatalf("first use of a signed message: %d %s", r.status, r.body)
	}
	for name, tc := range map[string]struct {
		headers map[string]string
		body    any
		status  int
		msg     string
	}{
		"replayed message":            {hdr, valid, 409, "Replayed message"},
		"stale timestamp":             {hdr, stale.sign(protocol.Registration{WorkerID: "gpu-worker-01"}, false), 403, "timestamp expired"},
		"future timestamp":            {hdr, future.sign(protocol.Registration{WorkerID: "gpu-worker-01"}, false), 403, "timestamp expired"},
		"bad signature":               {hdr, wrongKey.sign(protocol.Registration{WorkerID: "gpu-worker-01"}, false), 403, "Invalid cryptographic signature"},
		"tampered body":               {hdr, tampered, 403, "Invalid cryptographic signature"},
		"no timestamp":                {hdr, `{"worker_id":"gpu-worker-01","security":{"signature":"00"}}`, 403, "Missing required timestamp"},
		"no security":                 {hdr, `{"worker_id":"gpu-worker-01","timestamp":` + now() + `}`, 403, "Missing required security context"},
		"global token for individual": {globalForIndividual.headers(), globalForIndividual.sign(protocol.Registration{WorkerID: "gpu-worker-01"}, false), 403, "Invalid individual worker token"},
		"no worker_id":                {map[string]string{protocol.HeaderWorkerToken: globalToken, protocol.HeaderWorkerID: "x"}, "{}", 400, "worker_id is required"},
		"no token, bad body":          {map[string]string{protocol.HeaderWorkerID: "x"}, "{}", 403, "Missing X-Worker-Token"},
		"missing token":               {map[string]string{protocol.HeaderWorkerID: "gpu-worker-01"}, valid, 403, "Missing X-Worker-Token"},
		"header and body disagree":    {map[string]string{protocol.HeaderWorkerToken: globalToken, protocol.HeaderWorkerID: "someone"}, ts.worker("other", globalToken).sign(protocol.Registration{WorkerID: "other"}, false), 403, "sender ID mismatch"},
		"invalid worker id":           {map[string]string{protocol.HeaderWorkerToken: globalToken}, ts.worker("bad/id", globalToken).sign(protocol.Registration{WorkerID: "bad/id"}, false), 400, "invalid worker_id"},
		"malformed JSON":              {hdr, `{"worker_id":`, 400, "Invalid JSON body"},
		"wrong type":                  {hdr, `{"worker_id":"gpu-worker-01","timestamp":"soon"}`, 400, `field "timestamp" must be a number`},
		"oversized":                   {hdr, `{"worker_id":"gpu-worker-01","metadata":{"x":"` + strings.Repeat("y", 70<<10) + `"}}`, 413, "too large"},
		"signer is someone else":      {hdr, signedAs(t, gpu, "other"), 403, "Signer id"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.do("POST", protocol.PathRegister, tc.headers, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.msg != "" && !strings.Contains(r.errorText(t), tc.msg) {
				t.Fatalf("error %s lacks %q", r.body, tc.msg)
			}
		})
	}
}

func now() string { return strconv.FormatInt(time.Now().Unix(), 10) }

// signedAs signs a registration correctly but names another signer.
func signedAs(t *testing.T, w *signedWorker, signer string) []byte {
	var m map[string]any
	_ = json.Unmarshal(w.sign(protocol.Registration{WorkerID: w.id, WorkerType: "x"}, false), &m)
	m["security"].(map[string]any)["signer_id"] = signer
	out, _ := json.Marshal(m)
	return out
}

func TestWorkerFlow(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	if r := w.poll("0.1"); r.status != 404 || !strings.Contains(r.errorText(t), "register again") {
		t.Fatalf("poll before registering: %d %s", r.status, r.body)
	}
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	start := time.Now()
	if r := w.poll("0.2"); r.status != 204 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("empty poll: %d after %s", r.status, time.Since(start))
	}
	if r := w.poll("soon"); r.status != 400 {
		t.Fatalf("bad timeout: %d", r.status)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 3})
	p := w.take()
	if p.JobID != id || !strings.HasPrefix(p.TaskID, "task-") || p.Type != "work" || p.Params["n"] != 3.0 || p.Timestamp == 0 {
		t.Fatalf("payload %+v", p)
	}
	ev := w.sign(protocol.WorkerEvent{EventID: "e1", WorkerID: "w1", OriginWorkerID: "w1", EventType: "progress",
		TargetJobID: id, TargetTaskID: p.TaskID, Payload: map[string]any{"progress": 0.5, "message": "half way"}, BubblingChain: []string{}}, true)
	if r := ts.do("POST", protocol.PathEvents, w.headers(), ev); r.status != 200 || !strings.Contains(string(r.body), "event_accepted") {
		t.Fatalf("event: %d %s", r.status, r.body)
	}
	if j := ts.job(vipToken, id); j.Progress != 0.5 || j.ProgressMessage != "half way" {
		t.Fatalf("progress not applied: %v %q", j.Progress, j.ProgressMessage)
	}
	// A heartbeat lists a task the worker no longer owns.
	hb := w.sign(protocol.Heartbeat{WorkerID: "w1", Status: "busy", CurrentTasks: []string{p.TaskID, "task-stale"}}, false)
	r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), hb)
	var hbr protocol.HeartbeatResponse
	r.json(t, &hbr)
	if r.status != 200 || hbr.Status != "ok" || len(hbr.CancelTaskIDs) != 1 || hbr.CancelTaskIDs[0] != "task-stale" {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	if r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), nil); r.status != 200 || !strings.Contains(string(r.body), "ttl_refreshed") {
		t.Fatalf("empty heartbeat: %d %s", r.status, r.body)
	}
	if r := ts.do("PATCH", "/_worker/workers/ghost", ts.worker("ghost", globalToken).headers(), nil); r.status != 404 {
		t.Fatalf("unknown worker heartbeat: %d %s", r.status, r.body)
	}
	// Results: another worker's is refused, the real one accepted once.
	other := ts.worker("w2", globalToken)
	other.register("work")
	if r := other.result(id, p.TaskID, "success", nil); !strings.Contains(string(r.body), "worker_mismatch") {
		t.Fatalf("foreign result: %d %s", r.status, r.body)
	}
	spoof := other.sign(protocol.TaskResult{JobID: id, TaskID: p.TaskID, WorkerID: "w1"}, false)
	if r := ts.do("POST", protocol.PathResult, other.headers(), spoof); r.status != 403 {
		t.Fatalf("result for another worker: %d %s", r.status, r.body)
	}
	res := w.sign(protocol.TaskResult{JobID: id, TaskID: p.TaskID, WorkerID: "w1", Status: "success", Data: map[string]any{"out": 1}}, false)
	if r := ts.do("POST", protocol.PathResult, w.headers(), res); r.status != 200 || !strings.Contains(string(r.body), "success_transition") {
		t.Fatalf("result: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", protocol.PathResult, w.headers(), res); r.status != 409 {
		t.Fatalf("replayed result: %d %s", r.status, r.body)
	}
	time.Sleep(1100 * time.Millisecond) // a fresh signature: a genuine retry
	if r := w.result(id, p.TaskID, "success", map[string]any{"out": 2}); r.status != 200 || !strings.Contains(string(r.body), "ignored") {
		t.Fatalf("duplicate result: %d %s", r.status, r.body)
	}
	j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() })
	if j.Status != protocol.StatusFinished || j.StateHistory["out"] != 1.0 {
		t.Fatalf("job %+v", j)
	}
	if r := ts.do("POST", protocol.PathResult, w.headers(), `{"job_id":"x"}`); r.status != 400 {
		t.Fatalf("result without task_id: %d", r.status)
	}
}

func TestShortLivedTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	gpu := ts.worker("gpu-worker-01", gpuToken)
	gpu.register("work")
	r := ts.do("POST", protocol.PathToken, gpu.headers(), nil)
	var tok protocol.TokenResponse
	r.json(t, &tok)
	if r.status != 200 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 || tok.WorkerID != "gpu-worker-01" {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	// The access token authenticates; messages are still signed with the master token.
	sts := &signedWorker{ts: ts, id: "gpu-worker-01", token: tok.AccessToken, key: gpuToken, now: time.Now}
	if r := sts.poll("0.05"); r.status != 204 {
		t.Fatalf("poll with access token: %d %s", r.status, r.body)
	}
	if r := sts.register("work", "other"); r.status != 200 {
		t.Fatalf("register with access token: %d %s", r.status, r.body)
	}
	thief := &signedWorker{ts: ts, id: "w-other", token: tok.AccessToken, key: globalToken, now: time.Now}
	if r := thief.poll("0.05"); r.status != 403 {
		t.Fatalf("access token used by another worker: %d %s", r.status, r.body)
	}
	body := `{"refresh_token":"` + tok.RefreshToken + `"}`
	if r := ts.do("POST", protocol.PathTokenRefresh, map[string]string{protocol.HeaderWorkerID: "w-other"}, body); r.status != 403 || !strings.Contains(r.errorText(t), "owner mismatch") {
		t.Fatalf("refresh by another worker: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", protocol.PathTokenRefresh, map[string]string{protocol.HeaderWorkerID: "gpu-worker-01"}, body); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", protocol.PathTokenRefresh, map[string]string{protocol.HeaderWorkerID: "gpu-worker-01"}, `{"refresh_token":"made-up"}`); r.status != 403 {
		t.Fatalf("unknown refresh token: %d", r.status)
	}
	if r := ts.do("POST", protocol.PathTokenRefresh, nil, body); r.status != 400 {
		t.Fatalf("refresh without worker id: %d", r.status)
	}
}

func TestWebSocketCancelAndEvents(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	w.register("work")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.http.URL, "http") + "/_worker/ws/w1"
	if _, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{protocol.HeaderWorkerToken: {"wrong"}}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("websocket with a bad token: %v", err)
	}
	hdr := http.Header{}
	for k, v := range w.headers() {
		hdr.Set(k, v)
	}
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	id := ts.createJob(vipToken, nil)
	p := w.take()
	// Progress over the socket.
	ev := w.sign(protocol.WorkerEvent{EventID: "e9", WorkerID: "w1", OriginWorkerID: "w1", EventType: "progress", TargetJobID: id,
		TargetTaskID: p.TaskID, Payload: map[string]any{"progress": 0.25, "message": "quarter"}, BubblingChain: []string{}}, true)
	if err := conn.Write(ctx, websocket.MessageText, ev); err != nil {
		t.Fatal(err)
	}
	ts.waitJob(id, func(j protocol.Job) bool { return j.ProgressMessage == "quarter" })
	// Cancelling the job pushes cancel_task to the worker.
	if r := ts.do("POST", "/api/v1/jobs/"+id+"/cancel", client(vipToken), nil); r.status != 200 {
		t.Fatalf("cancel: %d", r.status)
	}
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cmd protocol.Command
	if err := json.Unmarshal(data, &cmd); err != nil || cmd.Command != "cancel_task" || cmd.TaskID != p.TaskID || cmd.JobID != id {
		t.Fatalf("command %s (%v)", data, err)
	}
	// A heartbeat sent while the handler unwinds still lists the task; it is
	// not cancelled a second time (the Python SDK would lose its result),
	// while a task the orchestrator never cancelled over the socket is.
	hb := w.sign(protocol.Heartbeat{WorkerID: "w1", Status: "busy", CurrentTasks: []string{p.TaskID, "task-stale"}}, false)
	r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), hb)
	var hbr protocol.HeartbeatResponse
	r.json(t, &hbr)
	if r.status != 200 || !slices.Equal(hbr.CancelTaskIDs, []string{"task-stale"}) {
		t.Fatalf("heartbeat after a pushed cancel: %d %s", r.status, r.body)
	}
	// Once the echo window has passed, a task still listed is cancelled
	// by heartbeat too: the worker may have missed the command.
	if ids := ts.srv.ws.withoutRecentCancels("w1", []string{p.TaskID}); len(ids) != 0 {
		t.Fatalf("within the window: %v", ids)
	}
	if ts.srv.ws.recentCancel("w1", p.TaskID, time.Now().Add(cancelEcho)) {
		t.Fatal("a pushed cancel still holds back the heartbeat's after the window")
	}
	// A second connection replaces the first.
	conn2, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.CloseNow()
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("old connection: %v", err)
	}
}

// The orchestrator answers a worker in the RXON version it announces when
// it speaks it (1.0b13 to 1.0b17: no mismatch warning in the SDK), and
// otherwise names its own version and warns.
func TestVersionNegotiation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	for offered, want := range map[string]struct {
		version string
		warns   bool
	}{
		"1.0b13": {"1.0b13", false}, "1.0b17": {"1.0b17", false}, "": {protocol.Version, false}, "2.0": {protocol.Version, true},
	} {
		w := ts.worker("v-"+strings.ReplaceAll(offered, ".", "-"), globalToken)
		h := w.headers()
		h[protocol.HeaderVersion] = offered
		r := ts.do("POST", protocol.PathRegister, h, w.sign(protocol.Registration{WorkerID: w.id}, false))
		var resp protocol.RegisterResponse
		r.json(t, &resp)
		if r.status != 200 || r.header.Get(protocol.HeaderVersion) != want.version || resp.Version != want.version || (resp.Warning != "") != want.warns {
			t.Errorf("offered %q: %d, header %q, %+v", offered, r.status, r.header.Get(protocol.HeaderVersion), resp)
		}
		if want.warns && !strings.Contains(resp.Warning, "speaks 1.0b13 to 1.0b17") {
			t.Errorf("warning %q", resp.Warning)
		}
		if p := ts.do("GET", "/_worker/workers/"+w.id+"/tasks/next?timeout=0.01", h, nil); p.header.Get(protocol.HeaderVersion) != want.version {
			t.Errorf("offered %q: poll answered in %q", offered, p.header.Get(protocol.HeaderVersion))
		}
	}
}

// With a task signing key every task handed out carries sig, which
// protocol.VerifyTask (as the Python SDK 1.0b20) accepts with that key only.
func TestTasksAreSigned(t *testing.T) {
	t.Parallel()
	const key = "orchestrator-secret"
	ts := newTestServer(t, func(o *Options) { o.TaskSigningKey = key })
	w := ts.registered("w1", "work")
	ts.createJob(vipToken, map[string]any{"n": 3})
	var r response
	for range 20 {
		if r = w.poll("1"); r.status == http.StatusOK {
			break
		}
	}
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"sig":"`) {
		t.Fatalf("poll: %d %s", r.status, r.body)
	}
	if err := protocol.VerifyTask(r.body, key); err != nil {
		t.Fatalf("the task does not verify: %v: %s", err, r.body)
	}
	if err := protocol.VerifyTask(r.body, "another"); !errors.Is(err, protocol.ErrTaskSignature) {
		t.Fatalf("verified with another key: %v", err)
	}
	// Without a key, no sig.
	plain := newTestServer(t, nil)
	w = plain.worker("w1", globalToken)
	w.register("work")
	plain.createJob(vipToken, nil)
	if p := w.take(); p.Sig != "" {
		t.Fatalf("unsigned server sent sig %q", p.Sig)
	}
}

// A result's costs are added to its job's (shown in the job view) and
// recorded with the result's event; values that are not finite,
// non-negative numbers are left out.
func TestResultCosts(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.registered("w1", "work")
	id := ts.createJob(vipToken, map[string]any{"mode": "parallel"})
	for range 2 {
		p := w.take()
		r := ts.do("POST", protocol.PathResult, w.headers(), w.sign(protocol.TaskResult{
			JobID: p.JobID, TaskID: p.TaskID, WorkerID: w.id, Status: protocol.TaskSuccess,
			Costs: map[string]any{"execution_time_seconds": 0.25, "gpu_seconds": 2, "note": "x", "refund": -1},
		}, false))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "accepted") {
			t.Fatalf("result: %d %s", r.status, r.body)
		}
	}
	j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() })
	if j.Status != protocol.StatusFinished || len(j.Costs) != 2 || j.Costs["execution_time_seconds"] != 0.5 || j.Costs["gpu_seconds"] != 4 {
		t.Fatalf("job %s, costs %v", j.Status, j.Costs)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, ev := range ts.events {
		if ev.Type == engine.EventTaskResult && ev.JobID == id {
			if c, _ := ev.Detail["costs"].(map[string]float64); c["gpu_seconds"] != 2 || len(c) != 2 {
				t.Fatalf("result event costs %v", ev.Detail["costs"])
			}
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d result events", n)
	}
}

// A result sent with ?next=1 brings the worker's next task in its answer,
// claimed for it as a poll would claim it (signed like a polled one); with
// none waiting the answer has none, and a bad value is refused before the
// result is applied.
func TestResultCarriesNextTask(t *testing.T) {
	t.Parallel()
	const key = "orchestrator-secret"
	ts := newTestServer(t, func(o *Options) { o.TaskSigningKey = key })
	w := ts.registered("w1", "work")
	first := ts.createJob(vipToken, map[string]any{"n": 1})
	p := w.take()
	second := ts.createJob(vipToken, map[string]any{"n": 2})
	ts.waitJob(second, func(j protocol.Job) bool { return len(j.Tasks) == 1 && j.Tasks[0].State == "queued" })

	done := w.sign(protocol.TaskResult{JobID: first, TaskID: p.TaskID, WorkerID: "w1", Status: "success"}, false)
	if r := ts.do("POST", protocol.PathResult+"?next=maybe", w.headers(), done); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "next must be true or false") {
		t.Fatalf("bad next: %d %s", r.status, r.body)
	}
	if j := ts.job(vipToken, first); j.Status.Terminal() {
		t.Fatalf("a refused result was applied: %+v", j)
	}
	if j := ts.job(vipToken, second); j.Tasks[0].State != "queued" {
		t.Fatalf("a refused result took a task: %+v", j.Tasks)
	}

	r := ts.do("POST", protocol.PathResult+"?next=1", w.headers(), done)
	var answer struct {
		protocol.ResultResponse
		Next json.RawMessage `json:"next_task"`
	}
	r.json(t, &answer)
	if r.status != http.StatusOK || answer.Transition != "success_transition" || len(answer.Next) == 0 {
		t.Fatalf("result with next: %d %s", r.status, r.body)
	}
	if err := protocol.VerifyTask(answer.Next, key); err != nil {
		t.Fatalf("the next task does not verify: %v: %s", err, answer.Next)
	}
	var next protocol.TaskPayload
	if err := json.Unmarshal(answer.Next, &next); err != nil {
		t.Fatal(err)
	}
	if next.JobID != second || next.Type != "work" || next.Params["n"] != 2.0 {
		t.Fatalf("next task %+v", next)
	}
	if j := ts.job(vipToken, second); j.Tasks[0].State != "running" || j.Tasks[0].WorkerID != "w1" {
		t.Fatalf("the next task is not running on w1: %+v", j.Tasks)
	}
	if r := w.poll("0.1"); r.status != http.StatusNoContent {
		t.Fatalf("poll after the hand-over: %d %s", r.status, r.body)
	}

	r = ts.do("POST", protocol.PathResult+"?next=true", w.headers(),
		w.sign(protocol.TaskResult{JobID: second, TaskID: next.TaskID, WorkerID: "w1", Status: "success"}, false))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "success_transition") || strings.Contains(string(r.body), "next_task") {
		t.Fatalf("result with nothing left: %d %s", r.status, r.body)
	}
	for _, id := range []string{first, second} {
		if j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() }); j.Status != protocol.StatusFinished {
			t.Fatalf("job %s: %+v", id, j)
		}
	}
}

// The pushed cancels a heartbeat leaves out are forgotten once their window
// has passed, not kept for ever.
func TestPushedCancelsAreForgotten(t *testing.T) {
	t.Parallel()
	h := newWSHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	for i := range 1000 {
		h.pushedCancel(workerTask{"w1", fmt.Sprint("task-", i)}, start)
	}
	if !h.recentCancel("w1", "task-7", start.Add(cancelEcho-time.Millisecond)) || h.recentCancel("w2", "task-7", start) {
		t.Fatal("a pushed cancel is not known within its window, or known for another worker")
	}
	later := start.Add(cancelEcho)
	h.pushedCancel(workerTask{"w1", "task-new"}, later)
	if len(h.cancels) != 1 || !h.recentCancel("w1", "task-new", later) {
		t.Fatalf("%d cancels kept after the window, want the new one alone", len(h.cancels))
	}
}
