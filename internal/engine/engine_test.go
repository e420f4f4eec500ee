package engine

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

func TestEndStatusesAndResults(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("ends")
	bp.Start("start", func(c *blueprint.Context) error {
		_ = c.Set("note", "hello")
		switch c.Input("to") {
		case "done":
			_ = c.Set("done", map[string]any{"answer": 42})
			return c.GoTo("done")
		case "custom":
			return c.GoTo("custom")
		case "broken":
			return c.GoTo("broken")
		}
		return c.GoTo("finished")
	}, blueprint.To("finished", "done", "broken", "custom"))
	bp.End("finished", nil)
	bp.End("done", nil, blueprint.AsFinished())
	bp.End("broken", nil)
	bp.End("custom", func(c *blueprint.Context) error { return c.SetResult("explicit") }, blueprint.AsFinished())
	en := newEnv(t, Config{}, bp)

	for _, tc := range []struct {
		to     string
		status protocol.JobStatus
		result any
	}{
		{"finished", protocol.StatusFinished, map[string]any{"note": "hello"}}, // no key for the state: all of state_history
		{"done", protocol.StatusFinished, map[string]any{"answer": 42.0}},      // state_history[end state]
		{"broken", protocol.StatusFailed, map[string]any{"note": "hello"}},     // name rule: not "finished" → failed
		{"custom", protocol.StatusFinished, "explicit"},                        // SetResult in the end handler
	} {
		j := en.waitEnd(en.create("ends", map[string]any{"to": tc.to}).ID)
		if j.Status != tc.status {
			t.Errorf("%s: status %s, want %s (%s)", tc.to, j.Status, tc.status, j.ErrorMessage)
		}
		if got, want := jsonOf(j.Result), jsonOf(tc.result); got != want {
			t.Errorf("%s: result %s, want %s", tc.to, got, want)
		}
		if j.CurrentState != tc.to || j.FinishedAt == nil {
			t.Errorf("%s: state %s finished_at %v", tc.to, j.CurrentState, j.FinishedAt)
		}
	}
}

func dispatchBP(name string, routes ...string) *blueprint.Blueprint {
	opts := []blueprint.Option{}
	for i := 0; i+1 < len(routes); i += 2 {
		opts = append(opts, blueprint.On(routes[i], routes[i+1]))
	}
	bp := blueprint.New(name)
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work", Params: map[string]any{"n": c.Input("n")}})
	}, opts...)
	seen := map[string]bool{}
	for i := 1; i < len(routes); i += 2 {
		if seen[routes[i]] {
			continue
		}
		seen[routes[i]] = true
		if strings.HasPrefix(routes[i], "finished") {
			bp.End(routes[i], nil, blueprint.AsFinished())
		} else {
			bp.End(routes[i], nil, blueprint.AsFailed())
		}
	}
	return bp
}

func TestTaskOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		routes  []string
		handle  func(*protocol.TaskPayload) protocol.TaskResult
		status  protocol.JobStatus
		state   string
		message string // fragment of error_message
		retries int    // expected extra attempts
	}{
		{"success merges data", []string{"success", "finished", "failure", "failed_state"},
			ok(map[string]any{"out": "x"}), protocol.StatusFinished, "finished", "", 0},
		{"custom status routes", []string{"success", "finished", "needs_review", "review"},
			func(*protocol.TaskPayload) protocol.TaskResult {
				return protocol.TaskResult{Status: "needs_review", Data: map[string]any{"reason": "blurry"}}
			}, protocol.StatusFailed, "review", "", 0},
		{"unknown status fails naming it", []string{"success", "finished"},
			func(*protocol.TaskPayload) protocol.TaskResult { return protocol.TaskResult{Status: "mystery"} },
			protocol.StatusFailed, "start", `unhandled status "mystery"`, 0},
		{"permanent failure follows failure route", []string{"success", "finished", "failure", "failed_state"},
			fail(protocol.ErrPermanent, "bad codec"), protocol.StatusFailed, "failed_state", "bad codec", 0},
		{"invalid input follows failure route", []string{"success", "finished", "failure", "finished_anyway"},
			fail(protocol.ErrInvalidInput, "no path"), protocol.StatusFinished, "finished_anyway", "no path", 0},
		{"permanent failure without route quarantines", []string{"success", "finished"},
			fail(protocol.ErrPermanent, "bad codec"), protocol.StatusQuarantined, "start", "PERMANENT_ERROR: bad codec", 0},
		{"security error quarantines despite a route", []string{"success", "finished", "failure", "failed_state"},
			fail(protocol.ErrSecurity, "tampered"), protocol.StatusQuarantined, "start", "SECURITY_ERROR: tampered", 0},
		{"contract violation quarantines", []string{"success", "finished", "failure", "failed_state"},
			fail(protocol.ErrContractViolation, "bad output"), protocol.StatusQuarantined, "start", "CONTRACT_VIOLATION_ERROR", 0},
		{"transient retried then failure route", []string{"success", "finished", "failure", "failed_state"},
			fail(protocol.ErrTransient, "flaky"), protocol.StatusFailed, "failed_state", "after 4 attempts", 3},
		{"resource exhausted is transient", []string{"success", "finished"},
			fail(protocol.ErrResourceExhausted, "oom"), protocol.StatusQuarantined, "start", "after 4 attempts", 3},
		{"missing code is transient", []string{"success", "finished", "failure", "failed_state"},
			func(*protocol.TaskPayload) protocol.TaskResult {
				return protocol.TaskResult{Status: protocol.TaskFailure}
			},
			protocol.StatusFailed, "failed_state", "TRANSIENT_ERROR", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t, Config{}, dispatchBP("d", tc.routes...))
			w := en.start(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, handle: tc.handle})
			j := en.waitEnd(en.create("d", map[string]any{"n": 1}).ID)
			if j.Status != tc.status || j.CurrentState != tc.state {
				t.Fatalf("got %s in %s (%s), want %s in %s", j.Status, j.CurrentState, j.ErrorMessage, tc.status, tc.state)
			}
			if !strings.Contains(j.ErrorMessage, tc.message) {
				t.Fatalf("error_message %q lacks %q", j.ErrorMessage, tc.message)
			}
			if got := int(w.runs.Load()) - 1; got != tc.retries {
				t.Fatalf("worker ran %d extra attempts, want %d", got, tc.retries)
			}
			if tc.name == "success merges data" && j.StateHistory["out"] != "x" {
				t.Fatalf("data not merged: %v", j.StateHistory)
			}
			if tc.name == "custom status routes" && (j.StateHistory["reason"] != "blurry" || j.LastResult.Status != "needs_review") {
				t.Fatalf("custom status data: %v %+v", j.StateHistory, j.LastResult)
			}
		})
	}
}

func TestTransientRetryMovesToAnotherWorker(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	flaky := en.start(&fakeWorker{id: "a-flaky", skills: map[string]float64{"work": 0.1}, handle: fail(protocol.ErrTransient, "hardware")})
	good := en.start(&fakeWorker{id: "b-good", skills: map[string]float64{"work": 0.5}, handle: ok(map[string]any{"by": "good"})})
	bp := blueprint.New("cheap").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "work"})
	}, blueprint.On("success", "finished"), blueprint.Using(blueprint.Cheapest)).End("finished", nil)
	_ = bp
	j := en.waitEnd(en.create("d", nil).ID)
	if j.Status != protocol.StatusFinished || j.StateHistory["by"] != "good" {
		t.Fatalf("job %s %v", summary(j), j.StateHistory)
	}
	if flaky.runs.Load() != 1 || good.runs.Load() != 1 {
		t.Fatalf("flaky ran %d, good ran %d: the retry must avoid the worker that failed", flaky.runs.Load(), good.runs.Load())
	}
	if d := j.Dispatches; len(d) != 2 || d[0].WorkerID != "a-flaky" || d[0].Attempt != 1 || d[1].WorkerID != "b-good" ||
		d[1].Attempt != 2 || d[1].Candidates != 1 || d[0].Strategy != "default" || d[0].Reason == "" {
		t.Fatalf("dispatch records %+v", d)
	}
	retries := en.eventsOf(EventTaskRetry)
	if len(retries) != 1 || retries[0].WorkerID != "a-flaky" {
		t.Fatalf("retry events %+v", retries)
	}
	// The transient failure costs exactly FailurePenalty, although the
	// retry saved the job; the reward for success stops at 1.
	en.waitReputation("a-flaky", 1-en.e.cfg.Reputation.FailurePenalty)
	en.waitReputation("b-good", 1)
}

func TestParallelFanIn(t *testing.T) {
	t.Parallel()
	var aggregatorRuns atomic.Int64
	bp := blueprint.New("par")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.DispatchParallel([]blueprint.Task{
			{Type: "work", Params: map[string]any{"i": 1}},
			{Type: "work", Params: map[string]any{"i": 2}},
			{Type: "work", Params: map[string]any{"i": 3, "fail": true}},
		})
	}, blueprint.FanIn("join"))
	bp.Aggregator("join", func(c *blueprint.Context) error {
		aggregatorRuns.Add(1)
		ok, failed := 0, 0
		for _, r := range c.Branches() {
			if r.Status == protocol.TaskSuccess {
				ok++
			} else if r.Error != nil && r.Error.Code == protocol.ErrInvalidInput {
				failed++
			}
		}
		_ = c.Set("ok", ok)
		_ = c.Set("failed", failed)
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	bp.End("finished", nil)
	en := newEnv(t, Config{}, bp)
	handle := func(p *protocol.TaskPayload) protocol.TaskResult {
		time.Sleep(20 * time.Millisecond)
		if p.Params["fail"] == true {
			return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrInvalidInput, Message: "no"}}
		}
		return protocol.TaskResult{Status: protocol.TaskSuccess, Data: map[string]any{"i": p.Params["i"]}}
	}
	en.start(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, handle: handle})
	en.start(&fakeWorker{id: "w2", skills: map[string]float64{"work": 1}, handle: handle})
	id := en.create("par", nil).ID
	waiting := en.wait(id, "waiting for branches", func(j *store.Job) bool { return j.Status == protocol.StatusWaitingParallel })
	if len(waiting.Tasks) != 3 {
		t.Fatalf("branches = %d", len(waiting.Tasks))
	}
	j := en.waitEnd(id)
	if j.Status != protocol.StatusFinished || j.StateHistory["ok"] != 2.0 || j.StateHistory["failed"] != 1.0 {
		t.Fatalf("job %s history %v", summary(j), j.StateHistory)
	}
	if aggregatorRuns.Load() != 1 {
		t.Fatalf("aggregator ran %d times", aggregatorRuns.Load())
	}
}

func TestSubBlueprint(t *testing.T) {
	t.Parallel()
	child := blueprint.New("child").Start("start", func(c *blueprint.Context) error {
		if c.Input("ok") == true {
			_ = c.Set("finished", map[string]any{"made": "by child"})
			return c.GoTo("finished")
		}
		if c.Input("wait") == true {
			return c.AwaitApproval("hold")
		}
		return c.GoTo("sub_failed")
	}, blueprint.To("finished", "sub_failed"), blueprint.On("go", "finished")).End("finished", nil).End("sub_failed", nil)
	parent := blueprint.New("parent").Start("start", func(c *blueprint.Context) error {
		return c.RunBlueprint("child", c.InitialData())
	}, blueprint.Child("child"), blueprint.On("success", "finished"), blueprint.On("failure", "child_failed")).
		End("finished", nil).End("child_failed", nil)
	en := newEnv(t, Config{}, parent, child)

	for _, tc := range []struct {
		input  map[string]any
		status protocol.JobStatus
		state  string
	}{
		{map[string]any{"ok": true}, protocol.StatusFinished, "finished"},
		{map[string]any{"ok": false}, protocol.StatusFailed, "child_failed"},
	} {
		p := en.waitEnd(en.create("parent", tc.input).ID)
		if p.Status != tc.status || p.CurrentState != tc.state {
			t.Fatalf("parent %s", summary(p))
		}
		var childID string
		for k := range p.StateHistory {
			if strings.HasPrefix(k, "sub_job_") {
				childID = strings.TrimSuffix(strings.TrimPrefix(k, "sub_job_"), "_result")
			}
		}
		c, err := en.e.GetJob(en.ctx, childID)
		if err != nil || c.ParentJobID != p.ID || c.Client.Name != "tester" || !c.Status.Terminal() {
			t.Fatalf("child record %+v (%v)", c, err)
		}
		if tc.status == protocol.StatusFinished && p.LastResult.Data["made"] != "by child" {
			t.Fatalf("child result not visible to the parent: %+v", p.LastResult)
		}
	}
	// Every ending resumes the parent: here the child is cancelled.
	p := en.create("parent", map[string]any{"wait": true})
	w := en.wait(p.ID, "waiting for child", func(j *store.Job) bool { return j.ChildJobID != "" })
	en.waitStatus(w.ChildJobID, protocol.StatusWaitingForHuman)
	if _, err := en.e.CancelJob(en.ctx, w.ChildJobID, ""); err != nil {
		t.Fatal(err)
	}
	if got := en.waitEnd(p.ID); got.CurrentState != "child_failed" {
		t.Fatalf("parent after child cancel: %s", summary(got))
	}
	// Cancelling the parent cancels the child.
	p = en.create("parent", map[string]any{"wait": true})
	w = en.wait(p.ID, "waiting for child", func(j *store.Job) bool { return j.ChildJobID != "" })
	en.waitStatus(w.ChildJobID, protocol.StatusWaitingForHuman)
	if _, err := en.e.CancelJob(en.ctx, p.ID, ""); err != nil {
		t.Fatal(err)
	}
	if c := en.waitEnd(w.ChildJobID); c.Status != protocol.StatusCancelled {
		t.Fatalf("child after parent cancel: %s", summary(c))
	}
	if pj, _ := en.e.GetJob(en.ctx, p.ID); pj.Status != protocol.StatusCancelled {
		t.Fatalf("parent: %s", summary(pj))
	}
}

func TestApproval(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("appr").Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("Please review")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected")).End("finished", nil).End("rejected", nil)
	en := newEnv(t, Config{}, bp)
	id := en.create("appr", nil).ID
	j := en.waitStatus(id, protocol.StatusWaitingForHuman)
	if j.Approval == nil || j.Approval.Message != "Please review" || strings.Join(j.Approval.Decisions, ",") != "approved,rejected" {
		t.Fatalf("approval = %+v", j.Approval)
	}
	if _, err := en.e.Approve(en.ctx, id, "maybe"); !errors.Is(err, ErrInvalidDecision) {
		t.Fatalf("bad decision: %v", err)
	}
	if _, err := en.e.Approve(en.ctx, id, "rejected"); err != nil {
		t.Fatal(err)
	}
	if j := en.waitEnd(id); j.CurrentState != "rejected" || j.Status != protocol.StatusFailed {
		t.Fatalf("after rejection: %s", summary(j))
	}
	if _, err := en.e.Approve(en.ctx, id, "approved"); !errors.Is(err, ErrNotAwaitingHuman) {
		t.Fatalf("approve of an ended job: %v", err)
	}
	if _, err := en.e.Approve(en.ctx, "nope", "approved"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("approve of a missing job: %v", err)
	}
}

func TestCancelRunningTaskIgnoresLateResult(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	release := make(chan struct{})
	got := make(chan protocol.ResultResponse, 1)
	en.register(&fakeWorker{id: "slow", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	go func() {
		p, err := en.e.NextTask(en.ctx, "slow", time.Second)
		if err != nil || p == nil {
			t.Errorf("no task: %v", err)
			return
		}
		<-release
		resp, _ := en.e.SubmitResult(en.ctx, "slow", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"})
		got <- resp
	}()
	en.wait(id, "running", func(j *store.Job) bool {
		for _, r := range j.Tasks {
			return r.State == store.TaskRunning
		}
		return false
	})
	if _, err := en.e.CancelJob(en.ctx, id, "client asked"); err != nil {
		t.Fatal(err)
	}
	cancels := en.eventsOf(EventCancelTask)
	if len(cancels) != 1 || cancels[0].WorkerID != "slow" || cancels[0].JobID != id {
		t.Fatalf("cancel_task events %+v", cancels)
	}
	close(release)
	resp := <-got
	if resp.Status != protocol.ResultIgnored || resp.Reason != protocol.IgnoredJobCancelled {
		t.Fatalf("late result response %+v", resp)
	}
	j, _ := en.e.GetJob(en.ctx, id)
	if j.Status != protocol.StatusCancelled || j.ErrorMessage != "client asked" {
		t.Fatalf("job after late result: %s", summary(j))
	}
	if _, err := en.e.CancelJob(en.ctx, id, ""); !errors.Is(err, ErrJobTerminal) {
		t.Fatalf("second cancel: %v", err)
	}
	if running, _ := en.store.RunningTasks(en.ctx, "slow"); len(running) != 0 {
		t.Fatalf("cancelled task still running on the worker: %v", running)
	}
}

func TestCancelParallelWithdrawsBranches(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("par").Start("start", func(c *blueprint.Context) error {
		return c.DispatchParallel([]blueprint.Task{{Type: "work"}, {Type: "work"}, {Type: "other"}})
	}, blueprint.FanIn("join")).Aggregator("join", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished")).End("finished", nil)
	en := newEnv(t, Config{}, bp)
	en.register(&fakeWorker{id: "idle", skills: map[string]float64{"work": 1}})
	id := en.create("par", nil).ID
	en.waitStatus(id, protocol.StatusWaitingParallel)
	if _, err := en.e.CancelJob(en.ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	lens, _ := en.store.QueueLengths(en.ctx)
	if len(lens) != 0 {
		t.Fatalf("queues still hold cancelled branches: %v", lens)
	}
	if p, _ := en.e.NextTask(en.ctx, "idle", 50*time.Millisecond); p != nil {
		t.Fatalf("a cancelled branch was handed out: %+v", p)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	t.Run("dispatch timeout without route fails the job", inBubble(func(t *testing.T) {
		bp := blueprint.New("d").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "nobody", DispatchTimeout: 100 * time.Millisecond})
		}, blueprint.On("success", "finished")).End("finished", nil)
		en := newEnv(t, Config{}, bp)
		id := en.create("d", nil).ID
		w := en.waitStatus(id, protocol.StatusWaitingForWorker)
		if !strings.Contains(w.ProgressMessage, "no worker with skill nobody is registered") {
			t.Fatalf("progress_message %q does not say why the task waits", w.ProgressMessage)
		}
		j := en.waitEnd(id)
		if j.Status != protocol.StatusFailed || !strings.Contains(j.ErrorMessage, "dispatch timeout") {
			t.Fatalf("job %s", summary(j))
		}
	}))
	t.Run("a pickup cancels the dispatch timeout it armed", func(t *testing.T) {
		bp := blueprint.New("d").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "work"})
		}, blueprint.On("success", "finished")).End("finished", nil)
		for _, timeout := range []time.Duration{0, time.Hour} {
			en := newEnv(t, Config{DispatchTimeout: timeout}, bp)
			en.register(&fakeWorker{id: "a", skills: map[string]float64{"work": 1}})
			id := en.create("d", nil).ID
			due, err := en.store.DueTimers(en.ctx, time.Now().Add(2*timeout), 10, time.Minute)
			if err != nil || timeout > 0 && len(due) != 1 || timeout == 0 && len(due) != 0 {
				t.Fatalf("dispatch timeout %s: timers after the create %+v (%v)", timeout, due, err)
			}
			if len(due) > 0 {
				if err := en.store.AddTimers(en.ctx, due[0]); err != nil { // claimed above: back as it was
					t.Fatal(err)
				}
			}
			if p, err := en.e.NextTask(en.ctx, "a", time.Second); err != nil || p == nil {
				t.Fatalf("poll: %+v %v", p, err)
			}
			due, err = en.store.DueTimers(en.ctx, time.Now().Add(2*timeout), 10, time.Minute)
			for _, tm := range due {
				if tm.Kind == store.TimerDispatch {
					t.Fatalf("dispatch timeout %s: the picked-up task of job %s still has its dispatch timer %+v", timeout, id, tm)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("execution timeout retries elsewhere then quarantines", inBubble(func(t *testing.T) {
		bp := blueprint.New("d").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "work", Timeout: 50 * time.Millisecond})
		}, blueprint.On("success", "finished")).End("finished", nil)
		en := newEnv(t, Config{MaxRetries: 1, Reputation: ReputationPolicy{FailurePenalty: 0.2}}, bp)
		hang := func(p *protocol.TaskPayload) protocol.TaskResult {
			time.Sleep(150 * time.Millisecond)
			return protocol.TaskResult{Status: "success"}
		}
		a := en.start(&fakeWorker{id: "a", skills: map[string]float64{"work": 1}, handle: hang})
		b := en.start(&fakeWorker{id: "b", skills: map[string]float64{"work": 1}, handle: hang})
		j := en.waitEnd(en.create("d", nil).ID)
		if j.Status != protocol.StatusQuarantined || !strings.Contains(j.ErrorMessage, "execution timeout") {
			t.Fatalf("job %s", summary(j))
		}
		if a.runs.Load() != 1 || b.runs.Load() != 1 {
			t.Fatalf("attempts: a=%d b=%d, want one each", a.runs.Load(), b.runs.Load())
		}
		late := en.eventsOf(EventLateResult)
		time.Sleep(200 * time.Millisecond)
		if late = en.eventsOf(EventLateResult); len(late) != 2 {
			t.Fatalf("late results recorded: %d", len(late))
		}
		// Each timeout cost its worker the configured FailurePenalty,
		// once: the late results that followed changed nothing.
		en.waitReputation("a", 1-0.2)
		en.waitReputation("b", 1-0.2)
	}))
	// Not in a bubble: its worker is still asleep in the handler when the
	// job ends, and a bubble waits for every goroutine it started.
	t.Run("result timeout follows failure route", func(t *testing.T) {
		bp := blueprint.New("d").Start("start", func(c *blueprint.Context) error {
			return c.Dispatch(blueprint.Task{Type: "work", ResultTimeout: 80 * time.Millisecond})
		}, blueprint.On("success", "finished"), blueprint.On("failure", "too_slow")).End("finished", nil).End("too_slow", nil)
		en := newEnv(t, Config{}, bp)
		en.start(&fakeWorker{id: "a", skills: map[string]float64{"work": 1}, handle: func(*protocol.TaskPayload) protocol.TaskResult {
			time.Sleep(300 * time.Millisecond)
			return protocol.TaskResult{Status: "success"}
		}})
		j := en.waitEnd(en.create("d", nil).ID)
		if j.CurrentState != "too_slow" || j.LastResult.Error.Code != protocol.ErrTimeout {
			t.Fatalf("job %s last %+v", summary(j), j.LastResult)
		}
	})
}

func TestHandlerFailures(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	bp := blueprint.New("h").Start("start", func(c *blueprint.Context) error {
		switch c.Input("mode") {
		case "flaky":
			if calls.Add(1) < 3 {
				return errors.New("database hiccup")
			}
			return c.GoTo("finished")
		case "broken":
			return errors.New("always broken")
		case "two":
			_ = c.GoTo("finished")
			return c.GoTo("finished")
		case "none":
			return nil
		case "loop":
			return c.GoTo("start")
		}
		return c.GoTo("nowhere")
	}, blueprint.To("finished", "start")).End("finished", nil)
	en := newEnv(t, Config{MaxTransitions: 5}, bp)
	for _, tc := range []struct {
		mode    string
		status  protocol.JobStatus
		message string
	}{
		{"flaky", protocol.StatusFinished, ""},
		{"broken", protocol.StatusQuarantined, "failed after 4 attempts: always broken"},
		{"two", protocol.StatusFailed, "exactly one action"},
		{"none", protocol.StatusFailed, "without choosing an action"},
		{"loop", protocol.StatusFailed, "maximum of 5 transitions"},
		{"undeclared", protocol.StatusFailed, `GoTo("nowhere")`},
	} {
		j := en.waitEnd(en.create("h", map[string]any{"mode": tc.mode}).ID)
		if j.Status != tc.status || !strings.Contains(j.ErrorMessage, tc.message) {
			t.Errorf("%s: %s", tc.mode, summary(j))
		}
	}
}

func TestResultChecks(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	en.register(&fakeWorker{id: "w2", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	var p *protocol.TaskPayload
	for p == nil {
		p, _ = en.e.NextTask(en.ctx, "w1", 100*time.Millisecond)
		if p == nil {
			p, _ = en.e.NextTask(en.ctx, "w2", 10*time.Millisecond)
			if p != nil {
				t.Fatal("the only idle choice was by id order: expected w1")
			}
		}
	}
	submit := func(worker string, r protocol.TaskResult) protocol.ResultResponse {
		t.Helper()
		resp, err := en.e.SubmitResult(en.ctx, worker, r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := submit("w2", protocol.TaskResult{JobID: id, TaskID: p.TaskID}); r.Reason != protocol.IgnoredWorkerMismatch {
		t.Fatalf("foreign worker: %+v", r)
	}
	if r := submit("w1", protocol.TaskResult{JobID: id, TaskID: "task-old"}); r.Reason != protocol.IgnoredStaleTask {
		t.Fatalf("stale task: %+v", r)
	}
	if r := submit("w1", protocol.TaskResult{JobID: "no-such-job", TaskID: p.TaskID}); r.Status == protocol.ResultAccepted {
		t.Fatalf("missing job accepted: %+v", r)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: id, TaskID: p.TaskID, WorkerID: "w2"}); !errors.Is(err, ErrWorkerIDMismatch) {
		t.Fatalf("spoofed worker_id: %v", err)
	}
	if r := submit("w1", protocol.TaskResult{JobID: id, TaskID: p.TaskID}); r.Status != protocol.ResultAccepted || r.Transition != "success_transition" {
		t.Fatalf("good result: %+v", r)
	}
	if r := submit("w1", protocol.TaskResult{JobID: id, TaskID: p.TaskID}); r.Status != protocol.ResultIgnored {
		t.Fatalf("duplicate result: %+v", r)
	}
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished || j.TransitionCount != 1 {
		t.Fatalf("job after duplicate: %s transitions=%d", summary(j), j.TransitionCount)
	}
}

func TestWaitingForWorkerUntilOneAppears(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("gpu").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "transcode", Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 4}}})
	}, blueprint.On("success", "finished")).End("finished", nil)
	en := newEnv(t, Config{}, bp)
	en.start(&fakeWorker{id: "cpu", skills: map[string]float64{"transcode": 0.1}, handle: ok(nil)})
	id := en.create("gpu", nil).ID
	j := en.wait(id, "explained", func(j *store.Job) bool { return strings.HasPrefix(j.ProgressMessage, "waiting:") })
	if !strings.Contains(j.ProgressMessage, "no worker with skill transcode and gpu_info.vram_gb >= 4") ||
		!strings.Contains(j.ProgressMessage, "cpu: missing gpu_info") {
		t.Fatalf("progress_message = %q", j.ProgressMessage)
	}
	gpu := en.start(&fakeWorker{id: "gpu", skills: map[string]float64{"transcode": 1}, gpuGB: 16, handle: ok(nil)})
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished || gpu.runs.Load() != 1 {
		t.Fatalf("job %s, gpu runs %d", summary(j), gpu.runs.Load())
	}
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("p").Start("start", func(c *blueprint.Context) error {
		prio, _ := c.Input("prio").(float64)
		return c.Dispatch(blueprint.Task{Type: "work", Priority: prio, Params: map[string]any{"prio": prio}})
	}, blueprint.On("success", "finished")).End("finished", nil)
	en := newEnv(t, Config{}, bp)
	en.register(&fakeWorker{id: "w", skills: map[string]float64{"work": 1}})
	var ids []string
	for _, prio := range []float64{0, 0, 5, 1} {
		id := en.create("p", map[string]any{"prio": prio}).ID
		en.waitStatus(id, protocol.StatusWaitingForWorker)
		ids = append(ids, id)
	}
	var order []string
	for range ids {
		p, err := en.e.NextTask(en.ctx, "w", time.Second)
		if err != nil || p == nil {
			t.Fatal(err)
		}
		order = append(order, p.JobID)
	}
	want := []string{ids[2], ids[3], ids[0], ids[1]}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want priority then FIFO %v", order, want)
	}
}

func TestProgressAndHeartbeat(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	en.register(&fakeWorker{id: "w", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	p, _ := en.e.NextTask(en.ctx, "w", time.Second)
	if p == nil {
		t.Fatal("no task")
	}
	ev := protocol.WorkerEvent{EventType: protocol.EventProgress, TargetJobID: id, TargetTaskID: p.TaskID,
		Payload: map[string]any{"progress": 0.6, "message": "Step 3 of 5 complete."}}
	if err := en.e.WorkerEvent(en.ctx, "w", ev); err != nil {
		t.Fatal(err)
	}
	if err := en.e.WorkerEvent(en.ctx, "intruder", ev); err != nil {
		t.Fatal(err)
	}
	j, _ := en.e.GetJob(en.ctx, id)
	if j.Progress != 0.6 || j.ProgressMessage != "Step 3 of 5 complete." {
		t.Fatalf("progress %v %q", j.Progress, j.ProgressMessage)
	}
	resp, err := en.e.Heartbeat(en.ctx, "w", &protocol.Heartbeat{WorkerID: "w", Status: "busy", CurrentTasks: []string{p.TaskID, "task-gone"}})
	if err != nil || len(resp.CancelTaskIDs) != 1 || resp.CancelTaskIDs[0] != "task-gone" {
		t.Fatalf("heartbeat %+v %v", resp, err)
	}
	if _, err := en.e.Heartbeat(en.ctx, "stranger", &protocol.Heartbeat{Status: "idle"}); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("unknown worker heartbeat: %v", err)
	}
	if _, err := en.e.Heartbeat(en.ctx, "stranger", nil); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("unknown worker empty heartbeat: %v", err)
	}
	if r, err := en.e.Heartbeat(en.ctx, "w", nil); err != nil || r.Status != "ttl_refreshed" {
		t.Fatalf("empty heartbeat %+v %v", r, err)
	}
}

func TestOfflineWorkerTaskMovesElsewhere(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testOfflineWorkerTaskMovesElsewhere)
}

func testOfflineWorkerTaskMovesElsewhere(t *testing.T) {
	en := newEnv(t, Config{WorkerTTL: 300 * time.Millisecond}, dispatchBP("d", "success", "finished"))
	en.register(&fakeWorker{id: "a-doomed", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	first, _ := en.e.NextTask(en.ctx, "a-doomed", time.Second)
	if first == nil || first.Attempt != 1 {
		t.Fatalf("first attempt %+v", first)
	}
	// "a-doomed" dies without a word; a healthy worker joins and heartbeats,
	// and holds the moved task until released.
	attempts := make(chan int, 4)
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	good := en.start(&fakeWorker{id: "b-good", skills: map[string]float64{"work": 1}, handle: func(p *protocol.TaskPayload) protocol.TaskResult {
		attempts <- p.Attempt
		<-release
		return protocol.TaskResult{Status: protocol.TaskSuccess, Data: map[string]any{"by": "good"}}
	}})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_, _ = en.e.Heartbeat(en.ctx, "b-good", nil)
			}
		}
	}()
	select {
	case n := <-attempts:
		if n != 2 {
			t.Fatalf("the moved task came as attempt %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the task of the dead worker never moved")
	}
	j, _ := en.e.GetJob(en.ctx, id)
	run := j.Tasks[first.TaskID]
	if run == nil || run.Attempt != 2 || run.WorkerID != "b-good" || run.State != store.TaskRunning || !slices.Contains(run.Excluded, "a-doomed") {
		t.Fatalf("moved task %+v", run)
	}

	// The dead worker's late result is ignored: the job goes on with the
	// attempt of "b-good".
	resp, err := en.e.SubmitResult(en.ctx, "a-doomed", protocol.TaskResult{JobID: id, TaskID: first.TaskID, Status: protocol.TaskSuccess,
		Data: map[string]any{"by": "doomed"}})
	if err != nil || resp.Status != protocol.ResultIgnored || resp.Reason != protocol.IgnoredWorkerMismatch {
		t.Fatalf("late result of the dead worker: %+v %v", resp, err)
	}
	j, _ = en.e.GetJob(en.ctx, id)
	if run := j.Tasks[first.TaskID]; j.Status.Terminal() || j.StateHistory["by"] != nil || run == nil || run.WorkerID != "b-good" || run.State != store.TaskRunning {
		t.Fatalf("job after the late result: %s %v", summary(j), j.StateHistory)
	}
	if late := en.eventsOf(EventLateResult); len(late) != 1 || late[0].WorkerID != "a-doomed" {
		t.Fatalf("late_result events %+v", late)
	}

	releaseOnce()
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished || j.StateHistory["by"] != "good" || good.runs.Load() != 1 {
		t.Fatalf("job %s %v, good ran %d", summary(j), j.StateHistory, good.runs.Load())
	}
	if len(en.eventsOf(EventWorkerOffline)) == 0 {
		t.Fatal("no worker_offline event")
	}
	// Going offline mid-task costs exactly FailurePenalty.
	en.waitReputation("a-doomed", 1-en.e.cfg.Reputation.FailurePenalty)
	en.waitReputation("b-good", 1)
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{})
	for _, reg := range []protocol.Registration{
		{WorkerID: "bad/id"},
		{WorkerID: ""},
		{WorkerID: "ok", SupportedSkills: []protocol.SkillInfo{{Name: "a b"}}},
	} {
		if _, err := en.e.RegisterWorker(en.ctx, reg); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%+v: %v", reg, err)
		}
	}
	if _, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "ghost"}); !errors.Is(err, ErrUnknownBlueprint) {
		t.Fatalf("unknown blueprint: %v", err)
	}
}

func TestRegisterRejectsBadBlueprintsAndChildren(t *testing.T) {
	t.Parallel()
	e, err := New(Config{Store: newEnv(t, Config{}).store})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(blueprint.New("x").Start("s", nil)); err == nil {
		t.Fatal("invalid blueprint registered")
	}
	parent := blueprint.New("p").Start("s", func(c *blueprint.Context) error { return nil },
		blueprint.Child("missing"), blueprint.On("success", "finished")).End("finished", nil)
	if err := e.Register(parent); err != nil {
		t.Fatal(err)
	}
	if err := e.Register(blueprint.New("p").Start("s", func(c *blueprint.Context) error { return nil }, blueprint.To("finished")).End("finished", nil)); err == nil {
		t.Fatal("duplicate blueprint name registered")
	}
	if err := e.Start(); err == nil || !strings.Contains(err.Error(), `child blueprint "missing"`) {
		t.Fatalf("start with a missing child: %v", err)
	}
}
