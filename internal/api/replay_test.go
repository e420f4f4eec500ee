package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// The Python SDK's result has no attempt number and no nonce, and a retried
// task keeps its id: a retry that fails the same way within the same second
// sends the very bytes of the attempt before. That is a new result, once
// per attempt; the same bytes again within one attempt are a replay.
func TestRetriedResultIsNotAReplay(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, func(c *engine.Config) { c.MaxRetries = 3 }, nil)
	w := ts.worker("w1", globalToken)
	frozen := time.Now()
	w.now = func() time.Time { return frozen } // every message in the same second
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 1})

	var body []byte
	for attempt := 1; attempt <= 4; attempt++ {
		task := w.take() // the only worker: the retry comes back to it
		if task.Attempt != attempt {
			t.Fatalf("attempt %d: the payload says attempt %d", attempt, task.Attempt)
		}
		b := w.sign(protocol.TaskResult{JobID: id, TaskID: task.TaskID, WorkerID: "w1", Status: protocol.TaskFailure,
			Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "GPU driver hiccup"}}, false)
		if body != nil && string(b) != string(body) {
			t.Fatalf("attempt %d: the result is not byte-identical to the first:\n%s\n%s", attempt, b, body)
		}
		body = b
		r := ts.do("POST", protocol.PathResult, w.headers(), body)
		if r.status != http.StatusOK {
			t.Fatalf("attempt %d: the retry's result was refused: %d %s", attempt, r.status, r.body)
		}
		var resp protocol.ResultResponse
		r.json(t, &resp)
		if resp.Status != protocol.ResultAccepted {
			t.Fatalf("attempt %d: %s", attempt, r.body)
		}
		// The same bytes again within this attempt: a replay, whether the
		// task waits for its retry or has ended.
		if r := ts.do("POST", protocol.PathResult, w.headers(), body); r.status != http.StatusConflict ||
			!strings.Contains(r.errorText(t), "Replayed message") {
			t.Fatalf("attempt %d: a second copy got %d %s, want 409", attempt, r.status, r.body)
		}
	}
	j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() })
	if len(j.Dispatches) != 4 || j.Dispatches[3].Attempt != 4 {
		t.Fatalf("want four attempts, each with its result applied: %+v", j.Dispatches)
	}
	if !strings.Contains(j.ErrorMessage, "GPU driver hiccup") {
		t.Fatalf("the job did not end with the task's error: %q (%s)", j.ErrorMessage, j.Status)
	}
}

// A result replayed while its task runs again on the same worker is taken
// once for that attempt and refused after; a result of another worker,
// or for a task that is not running on the sender, stays a replay.
func TestRepeatedResultNeedsARunningRetryOnTheSender(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, func(c *engine.Config) { c.MaxRetries = 3 }, nil)
	w := ts.worker("w1", globalToken)
	frozen := time.Now()
	w.now = func() time.Time { return frozen }
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 1})
	task := w.take()
	success := w.sign(protocol.TaskResult{JobID: id, TaskID: task.TaskID, WorkerID: "w1", Status: protocol.TaskSuccess,
		Data: map[string]any{"out": 1}}, false)
	if r := ts.do("POST", protocol.PathResult, w.headers(), success); r.status != 200 {
		t.Fatalf("result: %d %s", r.status, r.body)
	}
	ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusFinished })
	if r := ts.do("POST", protocol.PathResult, w.headers(), success); r.status != http.StatusConflict {
		t.Fatalf("a result replayed after its job finished: %d %s", r.status, r.body)
	}
	// An unknown job.
	ghost := w.sign(protocol.TaskResult{JobID: "no-such-job", TaskID: "t", WorkerID: "w1", Status: protocol.TaskSuccess}, false)
	for i, want := range []int{http.StatusOK, http.StatusConflict} {
		if r := ts.do("POST", protocol.PathResult, w.headers(), ghost); r.status != want {
			t.Fatalf("copy %d of a result for no job: %d %s, want %d", i+1, r.status, r.body, want)
		}
	}
}

// An SDK may send two identical heartbeats at once (a periodic one and a
// state change in the same second). The second is acknowledged, not
// refused (the SDK would back off its heartbeats and could expire), and not
// applied again: a replayed heartbeat cannot bring back a state the worker
// has left.
func TestRepeatedHeartbeatIsAcknowledgedNotApplied(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	frozen := time.Now()
	w.now = func() time.Time { return frozen }
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	status := func() string {
		r := ts.do("GET", "/api/v1/workers", client(vipToken), nil)
		var ws []struct {
			ID     string `json:"worker_id"`
			Status string `json:"status"`
		}
		r.json(t, &ws)
		for _, x := range ws {
			if x.ID == "w1" {
				return x.Status
			}
		}
		return "gone"
	}
	heartbeat := func(st string) []byte {
		return w.sign(protocol.Heartbeat{WorkerID: "w1", Status: st}, false)
	}
	send := func(body []byte) {
		t.Helper()
		r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), body)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"ok"`) {
			t.Fatalf("heartbeat: %d %s", r.status, r.body)
		}
	}
	idle := heartbeat(protocol.WorkerIdle)
	send(idle)
	send(idle)
	if s := status(); s != protocol.WorkerIdle {
		t.Fatalf("status %q after two identical heartbeats", s)
	}
	send(heartbeat("busy"))
	send(idle)
	if s := status(); s != "busy" {
		t.Fatalf("a repeated heartbeat was applied again: status %q", s)
	}
	// A refused heartbeat is not remembered: its repeat is refused alike.
	bad := w.sign(protocol.Heartbeat{WorkerID: "someone-else", Status: "idle"}, false)
	for i := range 2 {
		if r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), bad); r.status != http.StatusForbidden {
			t.Fatalf("copy %d of a heartbeat for another worker: %d %s", i+1, r.status, r.body)
		}
	}
}

// signFloat signs msg as older RXON versions did: with a float timestamp
// (time.time()).
func signFloat(t *testing.T, w *signedWorker, msg any, ts float64, event bool) []byte {
	t.Helper()
	raw, _ := json.Marshal(msg)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["timestamp"] = ts
	delete(m, "security")
	sign := protocol.Sign
	if event {
		sign = protocol.SignEvent
	}
	sig, err := sign(m, w.key)
	if err != nil {
		t.Fatal(err)
	}
	m["security"] = map[string]any{"signature": sig, "signer_id": w.id}
	out, _ := json.Marshal(m)
	want, _ := json.Marshal(ts)
	if !strings.Contains(string(out), `"timestamp":`+string(want)) || !strings.Contains(string(want), ".") {
		t.Fatalf("the body does not carry the float timestamp: %s", out)
	}
	return out
}

// Older RXON versions send a float timestamp: every signed message accepts
// one within the window (rounded to the second) and refuses a stale one.
func TestFloatTimestamps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	now := float64(time.Now().Unix()) + 0.33
	reg := protocol.Registration{WorkerID: "w1", WorkerType: "test", SupportedSkills: []protocol.SkillInfo{{Name: "work"}},
		Capabilities: &protocol.Capabilities{CostPerSkill: map[string]float64{"work": 0.001}}}

	stale := signFloat(t, w, reg, now-61.6, false)
	if r := ts.do("POST", protocol.PathRegister, w.headers(), stale); r.status != http.StatusForbidden ||
		!strings.Contains(r.errorText(t), "timestamp expired") {
		t.Fatalf("a stale float timestamp: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", protocol.PathRegister, w.headers(), signFloat(t, w, reg, now, false)); r.status != http.StatusOK {
		t.Fatalf("register with a float timestamp: %d %s", r.status, r.body)
	}
	if r := ts.do("PATCH", "/_worker/workers/w1", w.headers(),
		signFloat(t, w, protocol.Heartbeat{WorkerID: "w1", Status: "idle"}, now+0.2, false)); r.status != http.StatusOK {
		t.Fatalf("heartbeat with a float timestamp: %d %s", r.status, r.body)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 1})
	task := w.take()
	ev := protocol.WorkerEvent{EventID: "e1", WorkerID: "w1", OriginWorkerID: "w1", EventType: protocol.EventProgress,
		TargetJobID: id, TargetTaskID: task.TaskID, OriginTaskID: task.TaskID, BubblingChain: []string{},
		Payload: map[string]any{"progress": 0.5, "message": "half"}}
	if r := ts.do("POST", protocol.PathEvents, w.headers(), signFloat(t, w, ev, now+0.4, true)); r.status != http.StatusOK {
		t.Fatalf("event with a float timestamp: %d %s", r.status, r.body)
	}
	res := protocol.TaskResult{JobID: id, TaskID: task.TaskID, WorkerID: "w1", Status: protocol.TaskSuccess, Data: map[string]any{"out": 1}}
	if r := ts.do("POST", protocol.PathResult, w.headers(), signFloat(t, w, res, now+0.6, false)); r.status != http.StatusOK {
		t.Fatalf("result with a float timestamp: %d %s", r.status, r.body)
	}
	if j := ts.waitJob(id, func(j protocol.Job) bool { return j.Status.Terminal() }); j.Status != protocol.StatusFinished {
		t.Fatalf("job %s", j.Status)
	}
	// Not a number at all is still a 400 naming the field.
	r := ts.do("PATCH", "/_worker/workers/w1", w.headers(), `{"worker_id":"w1","status":"idle","timestamp":"soon"}`)
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), `"timestamp"`) {
		t.Fatalf("a string timestamp: %d %s", r.status, r.body)
	}
}
