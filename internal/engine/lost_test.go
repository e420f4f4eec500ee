package engine

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

func registerSession(t *testing.T, en *env, id, session string) {
	t.Helper()
	reg := protocol.Registration{WorkerID: id, SupportedSkills: []protocol.SkillInfo{{Name: "work"}},
		Capabilities: &protocol.Capabilities{CostPerSkill: map[string]float64{"work": 1}}, Metadata: map[string]any{"session": session}}
	if _, err := en.e.RegisterWorker(en.ctx, reg); err != nil {
		t.Fatal(err)
	}
}

// pickUp creates a one-task job and has worker id take its task.
func pickUp(t *testing.T, en *env, id string) (*store.Job, *protocol.TaskPayload) {
	t.Helper()
	j := en.create("one", nil)
	p, err := en.e.NextTask(en.ctx, id, time.Second)
	if err != nil || p == nil {
		t.Fatalf("poll: %+v %v", p, err)
	}
	return j, p
}

func attemptOf(en *env, jobID string) int {
	j, err := en.store.GetJob(en.ctx, jobID)
	if err != nil {
		return -1
	}
	for _, run := range j.Tasks {
		return run.Attempt
	}
	return 0
}

// A worker that registers as a new run under the same id (kill -9 and
// restart) has the tasks of its previous run retried at once, not after an
// execution timeout; one that registers again in the same run keeps them.
func TestRestartedWorkerLosesItsTasksAtOnce(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, oneTask())
	registerSession(t, en, "gpu", "run-1")
	j, p := pickUp(t, en, "gpu")
	registerSession(t, en, "gpu", "run-1") // same run: e.g. after an orchestrator failover
	if n := attemptOf(en, j.ID); n != 1 {
		t.Fatalf("a re-registration of the same run moved the task: attempt %d", n)
	}
	registerSession(t, en, "gpu", "run-2")
	en.wait(j.ID, "the task retried", func(j *store.Job) bool {
		for _, run := range j.Tasks {
			return run.Attempt == 2
		}
		return false
	})
	// The old run's result is late now; the new run takes the retry.
	if r, err := en.e.SubmitResult(en.ctx, "gpu", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: "success"}); err != nil || r.Status != protocol.ResultIgnored {
		t.Fatalf("the old run's result: %+v %v", r, err)
	}
	p2, err := en.e.NextTask(en.ctx, "gpu", time.Second)
	if err != nil || p2 == nil || p2.Attempt != 2 {
		t.Fatalf("retry poll: %+v %v", p2, err)
	}
	if _, err := en.e.SubmitResult(en.ctx, "gpu", protocol.TaskResult{JobID: p2.JobID, TaskID: p2.TaskID, Status: "success"}); err != nil {
		t.Fatal(err)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// A heartbeat that lists the worker's tasks and leaves one out gets it
// retried, once the task is older than LostTaskGrace; a heartbeat that
// lists nothing at all (an SDK that does not report) changes nothing.
func TestHeartbeatWithoutTheTaskLosesIt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testHeartbeatWithoutTheTaskLosesIt)
}

func testHeartbeatWithoutTheTaskLosesIt(t *testing.T) {
	en := newEnv(t, Config{LostTaskGrace: 200 * time.Millisecond}, oneTask())
	registerSession(t, en, "w", "run-1")
	j, p := pickUp(t, en, "w")
	hb := func(tasks []string) {
		t.Helper()
		if _, err := en.e.Heartbeat(en.ctx, "w", &protocol.Heartbeat{WorkerID: "w", Status: protocol.WorkerIdle, CurrentTasks: tasks}); err != nil {
			t.Fatal(err)
		}
	}
	hb([]string{}) // too young to judge
	hb(nil)        // does not report
	if n := attemptOf(en, j.ID); n != 1 {
		t.Fatalf("attempt %d after heartbeats that prove nothing", n)
	}
	time.Sleep(250 * time.Millisecond)
	hb([]string{p.TaskID}) // still running: listed
	if n := attemptOf(en, j.ID); n != 1 {
		t.Fatalf("attempt %d after a heartbeat listing the task", n)
	}
	hb([]string{})
	if n := attemptOf(en, j.ID); n != 2 {
		t.Fatalf("attempt %d after a heartbeat that leaves the task out, want 2", n)
	}
}

// A worker's event about a task it does not run stays out of that job's
// audit trail (any worker could otherwise write into any job's history);
// about its own running task it is the job's.
func TestWorkerEventsOnlyForHeldTasks(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, oneTask())
	registerSession(t, en, "w1", "a")
	registerSession(t, en, "w2", "b")
	j, p := pickUp(t, en, "w1")
	if p == nil {
		t.Fatal("no task")
	}
	for _, w := range []string{"w1", "w2"} {
		if err := en.e.WorkerEvent(en.ctx, w, protocol.WorkerEvent{EventType: "task_note", TargetJobID: j.ID, TargetTaskID: p.TaskID,
			Payload: map[string]any{"from": w}}); err != nil {
			t.Fatal(err)
		}
	}
	var mine, foreign int
	for _, ev := range en.eventsOf(EventWorkerEvent) {
		switch {
		case ev.WorkerID == "w1" && ev.JobID == j.ID:
			mine++
		case ev.WorkerID == "w2" && ev.JobID == "" && ev.Detail["target_job_id"] == j.ID:
			foreign++
		default:
			t.Fatalf("event %+v", ev)
		}
	}
	if mine != 1 || foreign != 1 {
		t.Fatalf("%d events in the job's trail from its worker, %d kept apart from another; want 1 and 1", mine, foreign)
	}
}
