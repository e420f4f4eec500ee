package engine

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

func gpuBlueprint() *blueprint.Blueprint {
	return blueprint.New("gpu").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "render", Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 8}}})
	}, blueprint.On("success", "finished")).End("finished", nil)
}

func TestStealingRespectsRequirements(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{StealAfter: time.Hour}, gpuBlueprint())
	en.register(&fakeWorker{id: "owner", skills: map[string]float64{"render": 1}, gpuGB: 16})
	id := en.create("gpu", nil).ID
	j := en.waitStatus(id, protocol.StatusWaitingForWorker)
	if j.Dispatches[0].WorkerID != "owner" {
		t.Fatalf("placed on %+v", j.Dispatches)
	}
	// The owner is idle: nobody steals before StealAfter.
	en.register(&fakeWorker{id: "thief-gpu", skills: map[string]float64{"render": 1}, gpuGB: 24})
	if p, _ := en.e.NextTask(en.ctx, "thief-gpu", 50*time.Millisecond); p != nil {
		t.Fatal("a task of an idle worker was stolen before StealAfter")
	}
	// The owner turns busy. A thief without a big enough GPU never takes
	// the task; one that meets the requirements does.
	if _, err := en.e.Heartbeat(en.ctx, "owner", &protocol.Heartbeat{WorkerID: "owner", Status: protocol.WorkerBusy}); err != nil {
		t.Fatal(err)
	}
	en.register(&fakeWorker{id: "thief-small", skills: map[string]float64{"render": 1}, gpuGB: 4})
	if p, _ := en.e.NextTask(en.ctx, "thief-small", 50*time.Millisecond); p != nil {
		t.Fatal("a worker without the required GPU stole the task")
	}
	p, err := en.e.NextTask(en.ctx, "thief-gpu", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("steal: %+v %v", p, err)
	}
	j, _ = en.e.GetJob(en.ctx, id)
	last := j.Dispatches[len(j.Dispatches)-1]
	if len(j.Dispatches) != 2 || last.WorkerID != "thief-gpu" || !strings.Contains(last.Reason, "stolen from owner") {
		t.Fatalf("dispatch records %+v", j.Dispatches)
	}
	if d := en.eventsOf(EventTaskDispatched); len(d) != 2 || d[1].WorkerID != "thief-gpu" || d[1].Detail["reason"] != last.Reason {
		t.Fatalf("task_dispatched events %+v", d)
	}
	if p, _ := en.e.NextTask(en.ctx, "owner", 50*time.Millisecond); p != nil {
		t.Fatal("the stolen task was handed out twice")
	}
	if _, err := en.e.SubmitResult(en.ctx, "thief-gpu", protocol.TaskResult{JobID: id, TaskID: p.TaskID}); err != nil {
		t.Fatal(err)
	}
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(j))
	}
}

func TestStealingAfterAWait(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{StealAfter: 100 * time.Millisecond}, gpuBlueprint())
	en.register(&fakeWorker{id: "slow-owner", skills: map[string]float64{"render": 1}, gpuGB: 16})
	id := en.create("gpu", nil).ID
	en.waitStatus(id, protocol.StatusWaitingForWorker)
	en.register(&fakeWorker{id: "helper", skills: map[string]float64{"render": 2}, gpuGB: 16})
	time.Sleep(150 * time.Millisecond)
	p, err := en.e.NextTask(en.ctx, "helper", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("steal after a wait: %+v %v", p, err)
	}
}

// It runs in a synctest bubble: the hour of recovery and the polls pass on
// the bubble's clock, in no real time.
func TestReputationRecoversOverTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testReputationRecoversOverTime)
}

func testReputationRecoversOverTime(t *testing.T) {
	en := newEnv(t, Config{Reputation: ReputationPolicy{RecoveryPerHour: 3600, RecoveryInterval: 50 * time.Millisecond}},
		dispatchBP("d", "success", "finished"))
	w := en.start(&fakeWorker{id: "fallen", skills: map[string]float64{"work": 1}, handle: ok(nil)})
	if err := en.store.SetReputation(en.ctx, "fallen", 0.1); err != nil {
		t.Fatal(err)
	}
	id := en.create("d", nil).ID
	en.wait(id, "explained", func(j *store.Job) bool { return strings.Contains(j.ProgressMessage, "below") || j.Status.Terminal() })
	// Recovery (0.05 every 50 ms here) lifts it over the floor and it works again.
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished || w.runs.Load() != 1 {
		t.Fatalf("job %s, runs %d", summary(j), w.runs.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		reps, _ := en.store.Reputations(en.ctx, "fallen")
		if reps["fallen"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reputation stuck at %v", reps["fallen"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReputationArithmetic(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	for _, tc := range []struct {
		name   string
		handle func(*protocol.TaskPayload) protocol.TaskResult
		want   float64 // reputation after one job, starting at 0.5
	}{
		{"success rewards", ok(nil), 0.51},
		{"permanent failure", fail(protocol.ErrPermanent, "no"), 0.4},
		{"security error", fail(protocol.ErrSecurity, "no"), 0.2},
		{"contract violation", fail(protocol.ErrContractViolation, "no"), 0.2},
		{"invalid input", fail(protocol.ErrInvalidInput, "no"), 0.5}, // the input's fault: no penalty
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "w-" + strings.ReplaceAll(tc.name, " ", "-")
			en.start(&fakeWorker{id: id, skills: map[string]float64{"work": 1}, handle: tc.handle})
			if err := en.store.SetReputation(en.ctx, id, 0.5); err != nil {
				t.Fatal(err)
			}
			defer en.store.DeleteWorker(en.ctx, id) // leave the pool for the next case
			en.waitEnd(en.create("d", nil).ID)
			time.Sleep(20 * time.Millisecond)
			reps, _ := en.store.Reputations(en.ctx, id)
			if d := reps[id] - tc.want; d > 1e-9 || d < -1e-9 {
				t.Fatalf("reputation %v, want %v", reps[id], tc.want)
			}
		})
	}
}

// TestFanOutSpreadsOverWorkers: the tasks of one fan-out are placed on one
// snapshot of the workers in which the tasks placed so far count, so
// the default strategy's tie-break on load spreads them over equally priced
// workers instead of stacking them on one.
func TestFanOutSpreadsOverWorkers(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("spread")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.DispatchParallel([]blueprint.Task{{Type: "work"}, {Type: "work"}, {Type: "work"}, {Type: "work"}, {Type: "work"}, {Type: "work"}})
	}, blueprint.FanIn("join"))
	bp.Aggregator("join", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	bp.End("finished", nil)
	en := newEnv(t, Config{}, bp)
	for _, id := range []string{"w1", "w2", "w3"} {
		en.register(&fakeWorker{id: id, skills: map[string]float64{"work": 1}}) // registered, not polling
	}
	id := en.create("spread", nil).ID
	j := en.wait(id, "branches queued", func(j *store.Job) bool { return len(j.Tasks) == 6 })
	per := map[string]int{}
	for _, run := range j.Tasks {
		if run.Decision == nil {
			t.Fatalf("task %s has no dispatch decision", run.ID)
		}
		per[run.Decision.WorkerID]++
	}
	if per["w1"] != 2 || per["w2"] != 2 || per["w3"] != 2 {
		t.Fatalf("six tasks over three idle, equally priced workers: %v, want two each", per)
	}
}

// TestPollSeesReRegistration: a worker's record is reused between its
// polls, but a registration in this process replaces it at once.
func TestPollSeesReRegistration(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("b").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "b"})
	}, blueprint.On("success", "finished")).End("finished", nil)
	en := newEnv(t, Config{}, bp)
	en.register(&fakeWorker{id: "w", skills: map[string]float64{"a": 1}})
	if p, err := en.e.NextTask(en.ctx, "w", 20*time.Millisecond); err != nil || p != nil {
		t.Fatalf("first poll: %+v %v", p, err)
	}
	en.register(&fakeWorker{id: "w", skills: map[string]float64{"b": 1}})
	id := en.create("b", nil).ID
	p, err := en.e.NextTask(en.ctx, "w", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("poll after re-registering with skill b: %+v %v", p, err)
	}
}

// TestPendingPullRecordsDecision: a task that waited in the pending queue
// gets a dispatch decision when a worker pulls it, like one place() queues
// for a worker: on the job, on the task and as an event.
func TestPendingPullRecordsDecision(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	id := en.create("d", nil).ID // before any worker exists
	j := en.waitStatus(id, protocol.StatusWaitingForWorker)
	if len(j.Dispatches) != 1 || j.Dispatches[0].WorkerID != "" || !strings.Contains(j.Dispatches[0].Reason, "is registered") {
		t.Fatalf("waiting decision %+v", j.Dispatches)
	}
	en.register(&fakeWorker{id: "late", skills: map[string]float64{"work": 1}})
	p, err := en.e.NextTask(en.ctx, "late", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("pull: %+v %v", p, err)
	}
	j, err = en.e.GetJob(en.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	last := j.Dispatches[len(j.Dispatches)-1]
	if len(j.Dispatches) != 2 || last.WorkerID != "late" || last.TaskID != p.TaskID || last.Attempt != 1 ||
		last.Candidates != 1 || last.Strategy != string(blueprint.Default) ||
		!strings.HasPrefix(last.Reason, "claimed from the pending queue by late (waited ") {
		t.Fatalf("dispatch records %+v", j.Dispatches)
	}
	if run := j.Tasks[p.TaskID]; run == nil || run.Decision == nil || *run.Decision != last.Decision {
		t.Fatalf("task decision %+v, want %+v", run, last.Decision)
	}
	dispatched := en.eventsOf(EventTaskDispatched)
	if len(dispatched) != 1 || dispatched[0].WorkerID != "late" || dispatched[0].TaskID != p.TaskID ||
		dispatched[0].Detail["strategy"] != "default" || dispatched[0].Detail["reason"] != last.Reason ||
		dispatched[0].Detail["attempt"] != 1 || dispatched[0].Detail["type"] != "work" {
		t.Fatalf("task_dispatched events %+v", dispatched)
	}
	if _, err := en.e.SubmitResult(en.ctx, "late", protocol.TaskResult{JobID: id, TaskID: p.TaskID}); err != nil {
		t.Fatal(err)
	}
	if j := en.waitEnd(id); j.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(j))
	}
}

// TestQueuedTasksRespectOutputStatuses: a job that routes on a custom
// status needs a worker that can return it; a worker that declares its
// statuses without that one neither pulls the task from the pending queue
// nor steals it from a busy worker.
func TestQueuedTasksRespectOutputStatuses(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{StealAfter: time.Hour}, dispatchBP("review", "success", "finished", "needs_review", "reviewed"))
	full := []string{protocol.TaskSuccess, protocol.TaskFailure, "needs_review"}

	// Pull: the job waits for any worker; the one that cannot say
	// needs_review leaves it to the one that can.
	id := en.create("review", nil).ID
	en.waitStatus(id, protocol.StatusWaitingForWorker)
	en.register(&fakeWorker{id: "narrow", skills: map[string]float64{"work": 1}, outputs: []string{protocol.TaskSuccess, protocol.TaskFailure}})
	if p, _ := en.e.NextTask(en.ctx, "narrow", 100*time.Millisecond); p != nil {
		t.Fatalf("a worker that cannot return needs_review pulled %+v", p)
	}
	en.register(&fakeWorker{id: "wide", skills: map[string]float64{"work": 1}, outputs: full})
	p, err := en.e.NextTask(en.ctx, "wide", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("pull by the able worker: %+v %v", p, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "wide", protocol.TaskResult{JobID: id, TaskID: p.TaskID, Status: "needs_review"}); err != nil {
		t.Fatal(err)
	}
	if j := en.waitEnd(id); j.CurrentState != "reviewed" {
		t.Fatalf("job %s", summary(j))
	}

	// Steal: the task is placed on "wide", which turns busy; "narrow" may
	// not take it over, a second able worker may.
	id = en.create("review", nil).ID
	j := en.waitStatus(id, protocol.StatusWaitingForWorker)
	if j.Dispatches[0].WorkerID != "wide" {
		t.Fatalf("placed %+v", j.Dispatches)
	}
	en.heartbeat("wide", protocol.WorkerBusy)
	if p, _ := en.e.NextTask(en.ctx, "narrow", 100*time.Millisecond); p != nil {
		t.Fatalf("a worker that cannot return needs_review stole %+v", p)
	}
	en.register(&fakeWorker{id: "wide2", skills: map[string]float64{"work": 1}, outputs: full})
	p, err = en.e.NextTask(en.ctx, "wide2", time.Second)
	if err != nil || p == nil || p.JobID != id {
		t.Fatalf("steal by an able worker: %+v %v", p, err)
	}
	j, _ = en.e.GetJob(en.ctx, id)
	if last := j.Dispatches[len(j.Dispatches)-1]; last.WorkerID != "wide2" || !strings.Contains(last.Reason, "stolen from wide") {
		t.Fatalf("dispatch records %+v", j.Dispatches)
	}
}

// failWhileBusy gives worker the job's task, makes it busy and reports a
// transient failure, so that the retry finds nobody eligible and waits in
// the pending queue. It returns the task id.
func failWhileBusy(t *testing.T, en *env, jobID, worker string) string {
	t.Helper()
	p, err := en.e.NextTask(en.ctx, worker, time.Second)
	if err != nil || p == nil || p.JobID != jobID || p.Attempt != 1 {
		t.Fatalf("first attempt: %+v %v", p, err)
	}
	en.heartbeat(worker, protocol.WorkerBusy)
	resp, err := en.e.SubmitResult(en.ctx, worker, protocol.TaskResult{JobID: jobID, TaskID: p.TaskID, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "flaky"}})
	if err != nil || resp.Transition != "retry_scheduled" {
		t.Fatalf("failure: %+v %v", resp, err)
	}
	j := en.wait(jobID, "retry waiting", func(j *store.Job) bool { return len(j.Dispatches) == 2 })
	if last := j.Dispatches[1]; last.WorkerID != "" || last.Attempt != 2 || !strings.Contains(last.Reason, worker+": busy") {
		t.Fatalf("retry placement %+v", j.Dispatches)
	}
	en.heartbeat(worker, protocol.WorkerIdle)
	return p.TaskID
}

// TestExcludedWorkerLeavesPendingRetryToAnother: a worker that failed a
// task does not pull its retry from the pending queue while another worker
// is eligible for it.
func TestExcludedWorkerLeavesPendingRetryToAnother(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	en.register(&fakeWorker{id: "a", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	taskID := failWhileBusy(t, en, id, "a")
	en.register(&fakeWorker{id: "b", skills: map[string]float64{"work": 1}})
	if p, _ := en.e.NextTask(en.ctx, "a", 100*time.Millisecond); p != nil {
		t.Fatalf("the worker that failed the task pulled its retry: %+v", p)
	}
	p, err := en.e.NextTask(en.ctx, "b", time.Second)
	if err != nil || p == nil || p.TaskID != taskID || p.Attempt != 2 {
		t.Fatalf("retry pulled by b: %+v %v", p, err)
	}
	j, _ := en.e.GetJob(en.ctx, id)
	if last := j.Dispatches[len(j.Dispatches)-1]; len(j.Dispatches) != 3 || last.WorkerID != "b" || last.Attempt != 2 {
		t.Fatalf("dispatch records %+v", j.Dispatches)
	}
}

// TestExcludedWorkerTakesPendingRetryWhenAlone: with nobody else eligible,
// the worker that failed the task still gets the retry (as place() would
// give it), rather than leave it waiting for good.
func TestExcludedWorkerTakesPendingRetryWhenAlone(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished"))
	en.register(&fakeWorker{id: "a", skills: map[string]float64{"work": 1}})
	id := en.create("d", nil).ID
	taskID := failWhileBusy(t, en, id, "a")
	p, err := en.e.NextTask(en.ctx, "a", time.Second)
	if err != nil || p == nil || p.TaskID != taskID || p.Attempt != 2 {
		t.Fatalf("retry for the lone worker: %+v %v", p, err)
	}
}

// TestReputationPenalties: each kind of reported failure costs exactly its
// configured penalty, once, and the transient one although the retry on
// another worker saves the job.
func TestReputationPenalties(t *testing.T) {
	t.Parallel()
	pol := ReputationPolicy{FailurePenalty: 0.15, PermanentPenalty: 0.05, SeverePenalty: 0.25}
	en := newEnv(t, Config{Reputation: pol}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	en.start(&fakeWorker{id: "other", skills: map[string]float64{"work": 1}, handle: ok(nil)})
	for _, tc := range []struct {
		code   string
		status protocol.JobStatus
		want   float64
	}{
		{protocol.ErrTransient, protocol.StatusFinished, 1 - pol.FailurePenalty},
		{protocol.ErrPermanent, protocol.StatusFailed, 1 - pol.PermanentPenalty},
		{protocol.ErrSecurity, protocol.StatusQuarantined, 1 - pol.SeverePenalty},
		{protocol.ErrInvalidInput, protocol.StatusFailed, 1}, // the input's fault
	} {
		t.Run(tc.code, func(t *testing.T) {
			// Cheaper than "other", so the default strategy tries it first.
			id := "w-" + strings.ToLower(tc.code)
			w := en.start(&fakeWorker{id: id, skills: map[string]float64{"work": 0.1}, handle: fail(tc.code, "no")})
			defer en.store.DeleteWorker(en.ctx, id) // leave the pool for the next case
			if j := en.waitEnd(en.create("d", nil).ID); j.Status != tc.status {
				t.Fatalf("job %s", summary(j))
			}
			en.waitReputation(id, tc.want)
			en.waitReputation("other", 1)
			if w.runs.Load() != 1 {
				t.Fatalf("the failing worker ran %d attempts, want 1", w.runs.Load())
			}
		})
	}
}

// TestReRegistrationKeepsReputation: a worker that registers again, at once
// or after it expired, keeps the reputation it had.
func TestReRegistrationKeepsReputation(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{WorkerTTL: 200 * time.Millisecond}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	w := &fakeWorker{id: "w", skills: map[string]float64{"work": 1}}
	en.register(w)
	id := en.create("d", nil).ID
	p, err := en.e.NextTask(en.ctx, "w", time.Second)
	if err != nil || p == nil {
		t.Fatalf("no task: %v", err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "w", protocol.TaskResult{JobID: id, TaskID: p.TaskID, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	want := 1 - en.e.cfg.Reputation.PermanentPenalty // 0.9
	en.waitReputation("w", want)
	en.register(w)
	en.waitReputation("w", want)

	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := en.store.GetWorker(en.ctx, "w") // a read: it refreshes nothing
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never expired: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := en.e.Heartbeat(en.ctx, "w", &protocol.Heartbeat{WorkerID: "w", Status: protocol.WorkerIdle}); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("heartbeat of the expired worker: %v, want it told to register again", err)
	}
	en.register(w)
	workers, err := en.e.ListWorkers(en.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(workers) != 1 || workers[0].ID != "w" || math.Abs(workers[0].Reputation-want) > 1e-9 {
		t.Fatalf("after expiry and re-registration: %+v", workers)
	}
}

// One client's failing jobs take at most ClientPenaltyCap from a worker in
// an hour, so no client benches a worker alone; another client's failures
// count against its own budget.
func TestOneClientCannotBenchAWorker(t *testing.T) {
	t.Parallel()
	pol := ReputationPolicy{PermanentPenalty: 0.1, ClientPenaltyCap: 0.25}
	en := newEnv(t, Config{Reputation: pol}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	en.start(&fakeWorker{id: "gpu", skills: map[string]float64{"work": 1}, handle: fail(protocol.ErrPermanent, "bad luck")})
	run := func(client string) {
		t.Helper()
		j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "d", Client: blueprint.Client{Name: client}})
		if err != nil {
			t.Fatal(err)
		}
		if end := en.waitEnd(j.ID); end.Status != protocol.StatusFailed {
			t.Fatalf("job %s", summary(end))
		}
	}
	for range 5 { // 0.5 of penalties, capped at 0.25
		run("mallory")
	}
	en.waitReputation("gpu", 0.75)
	run("alice")
	en.waitReputation("gpu", 0.65)
}

// When every worker with the skill is below the reputation floor, the best
// of them still gets the task, and the job says why.
func TestBestWorkerBelowTheFloorStillWorks(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	worse := en.start(&fakeWorker{id: "worse", skills: map[string]float64{"work": 0.1}, handle: ok(nil)})
	better := en.start(&fakeWorker{id: "better", skills: map[string]float64{"work": 1}, handle: ok(nil)})
	if err := en.store.SetReputation(en.ctx, "worse", 0.05); err != nil {
		t.Fatal(err)
	}
	if err := en.store.SetReputation(en.ctx, "better", 0.2); err != nil {
		t.Fatal(err)
	}
	j := en.waitEnd(en.create("d", nil).ID)
	if j.Status != protocol.StatusFinished || better.runs.Load() != 1 || worse.runs.Load() != 0 {
		t.Fatalf("job %s; better ran %d, worse %d", summary(j), better.runs.Load(), worse.runs.Load())
	}
	if d := j.Dispatches; len(d) != 1 || !strings.Contains(d[0].Reason, "below the reputation floor") {
		t.Fatalf("dispatch %+v", d)
	}
}

// A task that fails transiently wherever it runs fails because of its
// input: no worker loses reputation for it. (The finding: two such jobs
// took the only GPU worker below the floor.)
func TestTransientFailuresEverywhereCostNothing(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{MaxRetries: 2}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	en.start(&fakeWorker{id: "gpu", skills: map[string]float64{"work": 1}, handle: fail(protocol.ErrTransient, "the input crashes the model")})
	for range 3 {
		if j := en.waitEnd(en.create("d", nil).ID); j.CurrentState != "failed_state" {
			t.Fatalf("job %s", summary(j))
		}
	}
	en.waitReputation("gpu", 1)
}

// A fan-out wider than MaxFanOut fails its job with a message that names
// the limit, and dispatches nothing.
func TestFanOutWidthLimit(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("wide").Start("start", func(c *blueprint.Context) error {
		tasks := make([]blueprint.Task, 4)
		for i := range tasks {
			tasks[i].Type = "work"
		}
		return c.DispatchParallel(tasks)
	}, blueprint.FanIn("join"))
	bp.Aggregator("join", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	bp.End("finished", nil)
	en := newEnv(t, Config{MaxFanOut: 3}, bp)
	j := en.waitEnd(en.create("wide", nil).ID)
	if j.Status != protocol.StatusFailed || !strings.Contains(j.ErrorMessage, "4 parallel tasks, more than the limit of 3") || len(j.Dispatches) != 0 {
		t.Fatalf("job %s, dispatches %d", summary(j), len(j.Dispatches))
	}
}

// pendingReads counts the claims and reads of pending queues.
type pendingReads struct {
	store.Store
	claims, peeks atomic.Int64
}

func (s *pendingReads) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	if strings.HasPrefix(queue, store.PendingQueue("")) {
		s.claims.Add(1)
	}
	return s.Store.ClaimNext(ctx, queue, workerID)
}

func (s *pendingReads) PeekTasks(ctx context.Context, queue string, limit int) ([]store.QueuedTask, error) {
	s.peeks.Add(1)
	return s.Store.PeekTasks(ctx, queue, limit)
}

// TestOneSkillWorkerClaimsPendingHeadOutright: a worker with one skill
// claims the head of its pending queue without reading it first; one that
// may not run the head puts it back, and then reads heads before it claims
// for a while, so that the put-back, which wakes its polls, does not make
// it claim the same task over and over.
func TestOneSkillWorkerClaimsPendingHeadOutright(t *testing.T) {
	t.Run("fit", func(t *testing.T) {
		// Another process queued the task: this one claims it (had it
		// queued it, it would pick it up with its claim, see placed).
		st := &pendingReads{Store: memory.New(memory.Options{})}
		other := newEnv(t, Config{Store: st}, dispatchBP("d", "success", "finished"))
		en := newEnv(t, Config{Store: st}, dispatchBP("d", "success", "finished"))
		id := other.create("d", nil).ID // before any worker: the task waits
		en.waitStatus(id, protocol.StatusWaitingForWorker)
		en.register(&fakeWorker{id: "w", skills: map[string]float64{"work": 1}})
		p, err := en.e.NextTask(en.ctx, "w", time.Second)
		if err != nil || p == nil || p.JobID != id {
			t.Fatalf("pull: %+v %v", p, err)
		}
		if c, r := st.claims.Load(), st.peeks.Load(); c != 1 || r != 0 {
			t.Fatalf("%d claims and %d reads of the pending queue, want 1 and 0", c, r)
		}
	})
	t.Run("unfit", inBubble(func(t *testing.T) {
		st := &pendingReads{Store: memory.New(memory.Options{})}
		other := newEnv(t, Config{Store: st, StealAfter: time.Hour}, gpuBlueprint())
		en := newEnv(t, Config{Store: st, StealAfter: time.Hour}, gpuBlueprint())
		id := other.create("gpu", nil).ID
		en.waitStatus(id, protocol.StatusWaitingForWorker)
		en.register(&fakeWorker{id: "cpu", skills: map[string]float64{"render": 1}})
		// Ten polls over 3 s: at most one claim (and put-back) a second.
		for range 10 {
			if p, _ := en.e.NextTask(en.ctx, "cpu", 300*time.Millisecond); p != nil {
				t.Fatalf("a worker without a GPU took %+v", p)
			}
		}
		if c := st.claims.Load(); c < 1 || c > 4 {
			t.Fatalf("%d claims of the pending head in 3 s, want 1 to 4", c)
		}
		en.register(&fakeWorker{id: "gpu", skills: map[string]float64{"render": 1}, gpuGB: 16})
		p, err := en.e.NextTask(en.ctx, "gpu", time.Second)
		if err != nil || p == nil || p.JobID != id || p.Attempt != 1 {
			t.Fatalf("pull by the GPU worker: %+v %v", p, err)
		}
	}))
}

// scanGate holds every steal scan (QueueLengths) until released, counting
// them.
type scanGate struct {
	store.Store
	scans   atomic.Int64
	release chan struct{}
}

func (s *scanGate) QueueLengths(ctx context.Context) (map[string]int, error) {
	s.scans.Add(1)
	<-s.release
	return s.Store.QueueLengths(ctx)
}

// TestStealScansOneAtATime: the polls of idle workers that wake together
// do not scan the queues together: one scans, the others look again when
// it is over.
func TestStealScansOneAtATime(t *testing.T) {
	t.Parallel()
	gate := &scanGate{Store: memory.New(memory.Options{}), release: make(chan struct{})}
	en := newEnv(t, Config{Store: gate}, oneTask())
	en.register(&fakeWorker{id: "thief", skills: map[string]float64{"work": 1}})
	thief, err := en.e.poller(en.ctx, "thief")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if qt, _, err := en.e.steal(en.ctx, thief); err != nil || qt != nil {
				t.Errorf("steal from empty queues: %+v, %v", qt, err)
			}
		})
	}
	for gate.scans.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others reach the scan, and skip it
	close(gate.release)
	wg.Wait()
	if n := gate.scans.Load(); n != 1 {
		t.Fatalf("%d scans for 8 polls at once, want 1", n)
	}
	// The fruitless scan pauses the next ones; the pause over, a poll scans.
	if qt, _, _ := en.e.steal(en.ctx, thief); qt != nil || gate.scans.Load() != 1 {
		t.Fatalf("a scan during the pause: %d scans", gate.scans.Load())
	}
	en.e.stealIdleUntil.Store(0)
	if _, _, err := en.e.steal(en.ctx, thief); err != nil || gate.scans.Load() != 2 {
		t.Fatalf("after the pause: %d scans, %v", gate.scans.Load(), err)
	}
}
