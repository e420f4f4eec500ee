package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func longPolls(c *engine.Config) { c.PollTimeout = 30 * time.Second }

// pollAsync starts a long poll and delivers its status and body, with the
// time it ended.
func (w *signedWorker) pollAsync(timeout string) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		req, _ := http.NewRequest("GET", w.ts.http.URL+"/_worker/workers/"+w.id+"/tasks/next?timeout="+timeout, nil)
		for k, v := range w.headers() {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		p := polled{err: err}
		if err == nil {
			p.status = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&p.task)
			resp.Body.Close()
		}
		p.at = time.Now()
		out <- p
	}()
	return out
}

type polled struct {
	status int
	task   protocol.TaskPayload
	err    error
	at     time.Time
}

func TestLongPollWakesWhenWorkArrives(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, longPolls, nil)
	w := ts.worker("w1", globalToken)
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	poll := w.pollAsync("10")
	time.Sleep(200 * time.Millisecond) // the poll is waiting
	created := time.Now()
	id := ts.createJob(vipToken, nil)
	select {
	case p := <-poll:
		if p.err != nil || p.status != http.StatusOK || p.task.JobID != id {
			t.Fatalf("poll: %d %+v %v, want the task of job %s", p.status, p.task, p.err, id)
		}
		if d := p.at.Sub(created); d > 2*time.Second {
			t.Fatalf("the poll answered %s after the job was created: it did not wake", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the poll never answered")
	}
}

func TestCloseReleasesLongPollsButServesOn(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, longPolls, nil)
	w := ts.worker("w1", globalToken)
	if r := w.register("other-skill"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	poll := w.pollAsync("30")
	time.Sleep(200 * time.Millisecond)
	ts.srv.Close()
	select {
	case p := <-poll:
		if p.err != nil || p.status != http.StatusNoContent {
			t.Fatalf("released poll: %d %v", p.status, p.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the long poll")
	}
	start := time.Now()
	if r := w.poll("30"); r.status != http.StatusNoContent || time.Since(start) > 2*time.Second {
		t.Fatalf("a poll after Close: %d after %s", r.status, time.Since(start))
	}
	// Other requests still work, and the engine still runs: shutdown lets
	// in-flight requests finish before it stops the engine.
	id := ts.createJob(vipToken, nil)
	ts.waitJob(id, func(j protocol.Job) bool { return j.Status == protocol.StatusWaitingForWorker })
}

// The upstream Python SDK registers again when a heartbeat error contains
// "not found" (worker-protocol.md §5.4); ours on a 404.
func TestUnknownWorkerIsToldToRegisterAgain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	ghost := ts.worker("ghost", globalToken)
	for name, r := range map[string]response{
		"poll":            ghost.poll("0.1"),
		"empty heartbeat": ts.do("PATCH", "/_worker/workers/ghost", ghost.headers(), nil),
		"heartbeat": ts.do("PATCH", "/_worker/workers/ghost", ghost.headers(),
			ghost.sign(protocol.Heartbeat{WorkerID: "ghost", Status: "idle"}, false)),
	} {
		if r.status != http.StatusNotFound {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		msg := r.errorText(t)
		if !strings.Contains(strings.ToLower(msg), "not found") || !strings.Contains(msg, "register again") {
			t.Fatalf("%s: %q does not tell the worker to register again in words both SDKs understand", name, msg)
		}
	}
	// Registering is what it takes.
	if r := ghost.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if r := ts.do("PATCH", "/_worker/workers/ghost", ghost.headers(), nil); r.status != 200 {
		t.Fatalf("heartbeat after registering: %d %s", r.status, r.body)
	}
}

// TestRejectedSignedMessagesChangeNothing sends heartbeats, results and
// events that must be refused, and checks that the job, the worker and the
// engine's event stream stay exactly as they were.
func TestRejectedSignedMessagesChangeNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	w := ts.worker("w1", globalToken)
	if r := w.register("work"); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	id := ts.createJob(vipToken, map[string]any{"n": 1})
	task := w.take()

	state := func() string {
		job := ts.do("GET", "/api/v1/jobs/"+id, client(vipToken), nil)
		workers := ts.do("GET", "/api/v1/workers", client(vipToken), nil)
		return fmt.Sprintf("job %s\nworkers %s\nevents %d", job.body, workers.body, ts.eventCount())
	}
	// settled waits until nothing moves any more.
	settled := func() string {
		t.Helper()
		prev := state()
		for range 100 {
			time.Sleep(20 * time.Millisecond)
			cur := state()
			if cur == prev {
				return cur
			}
			prev = cur
		}
		t.Fatal("the state never settled")
		return ""
	}

	pad := strings.Repeat("x", 70<<10) // over the 64 KiB body limit
	kinds := []struct {
		name, method, path string
		event              bool
		msg                any
		wrongTypes         string
	}{
		{"heartbeat", "PATCH", "/_worker/workers/w1", false,
			protocol.Heartbeat{WorkerID: "w1", Status: "busy", CurrentTasks: []string{task.TaskID}},
			`{"worker_id":"w1","status":5}`},
		{"event", "POST", protocol.PathEvents, true,
			protocol.WorkerEvent{EventID: "e1", WorkerID: "w1", OriginWorkerID: "w1", EventType: "progress", TargetJobID: id,
				TargetTaskID: task.TaskID, Payload: map[string]any{"progress": 0.9, "message": "nearly"}, BubblingChain: []string{}},
			`{"worker_id":"w1","event_type":["progress"]}`},
		{"result", "POST", protocol.PathResult, false,
			protocol.TaskResult{JobID: id, TaskID: task.TaskID, WorkerID: "w1", Status: "success", Data: map[string]any{"out": 1}},
			`{"job_id":"` + id + `","task_id":7,"worker_id":"w1"}`},
	}
	badKey := ts.worker("w1", globalToken)
	badKey.key = "not-the-signing-key"
	stale := ts.worker("w1", globalToken)
	stale.now = func() time.Time { return time.Now().Add(-2 * protocol.ReplayWindow) }
	wrongToken := w.headers()
	wrongToken[protocol.HeaderWorkerToken] = "not-a-worker-token"
	oversized := func(msg any, event bool) []byte {
		var m map[string]any
		raw, _ := json.Marshal(msg)
		_ = json.Unmarshal(raw, &m)
		m["metadata"] = map[string]any{"pad": pad}
		return w.sign(m, event)
	}

	cases := []struct {
		name    string
		headers map[string]string
		body    func(msg any, event bool, wrongTypes string) any
		status  int
		msg     string
	}{
		{"bad signature", w.headers(), func(m any, ev bool, _ string) any { return badKey.sign(m, ev) }, 403, "Invalid cryptographic signature"},
		{"stale timestamp", w.headers(), func(m any, ev bool, _ string) any { return stale.sign(m, ev) }, 403, "timestamp expired"},
		{"wrong token", wrongToken, func(m any, ev bool, _ string) any { return w.sign(m, ev) }, 403, "Unauthorized"},
		{"malformed JSON", w.headers(), func(any, bool, string) any { return `{"worker_id":"w1",` }, 400, "Invalid JSON body"},
		{"wrong types", w.headers(), func(_ any, _ bool, wt string) any { return wt }, 400, "must be"},
		{"oversized body", w.headers(), func(m any, ev bool, _ string) any { return oversized(m, ev) }, 413, "too large"},
	}
	before := settled()
	for _, k := range kinds {
		for _, c := range cases {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				r := ts.do(k.method, k.path, c.headers, c.body(k.msg, k.event, k.wrongTypes))
				if r.status != c.status || !strings.Contains(r.errorText(t), c.msg) {
					t.Fatalf("%d %s, want %d %q", r.status, r.body, c.status, c.msg)
				}
				if after := state(); after != before {
					t.Fatalf("a refused message changed the state:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
	// A replayed message: the first copy is applied, the second refused
	// (a heartbeat's acknowledged without being applied: replay.go).
	for _, k := range kinds {
		t.Run(k.name+"/replayed", func(t *testing.T) {
			body := w.sign(k.msg, k.event)
			if r := ts.do(k.method, k.path, w.headers(), body); r.status != 200 {
				t.Fatalf("first copy: %d %s", r.status, r.body)
			}
			applied := settled()
			if applied == before {
				t.Fatal("the first copy changed nothing: the state comparison is blind")
			}
			before = applied
			r := ts.do(k.method, k.path, w.headers(), body)
			if k.name == "heartbeat" {
				if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"ok"`) {
					t.Fatalf("repeated heartbeat: %d %s", r.status, r.body)
				}
			} else if r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "Replayed message") {
				t.Fatalf("replay: %d %s", r.status, r.body)
			}
			if after := state(); after != applied {
				t.Fatalf("a replay changed the state:\nbefore %s\nafter  %s", applied, after)
			}
		})
	}
	if j := ts.job(vipToken, id); j.Status != protocol.StatusFinished || j.StateHistory["out"] != 1.0 {
		t.Fatalf("the genuine result was not applied once: %+v", j)
	}
}
