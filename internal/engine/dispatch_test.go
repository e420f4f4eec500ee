package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

func gpuBlueprint() *blueprint.Blueprint {
	return blueprint.New("gpu").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "render", Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 8}}})
	}, blueprint.On("success", "finished")).End("finished", nil)
}

func TestStealingRespectsRequirements(t *testing.T) {
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

func TestReputationRecoversOverTime(t *testing.T) {
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
		{"invalid input", fail(protocol.ErrInvalidInput, "no"), 0.4},
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
