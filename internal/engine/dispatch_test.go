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
