package orchestrator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// serveWithWorkers starts an orchestrator with bp and SDK workers with the
// given prices for skill "x"; each worker records the tasks it ran.
func serveWithWorkers(t *testing.T, bp *blueprint.Blueprint, prices map[string]float64) (*client.Client, map[string]*[]string, *sync.Mutex) {
	t.Helper()
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second,
		Clients: []orchestrator.Client{{Name: "c", Token: "ct"}}}, bp)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := map[string]*[]string{}
	for id, price := range prices {
		list := &[]string{}
		ran[id] = list
		w, err := worker.New(worker.Config{ID: id, Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(),
			MaxConcurrentTasks: 1, PollTimeout: time.Second, Resources: worker.Resources{DisableDetection: true}})
		if err != nil {
			t.Fatal(err)
		}
		w.Handle("x", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			mu.Lock()
			*list = append(*list, task.JobID())
			mu.Unlock()
			return worker.Result{}, nil
		}, worker.Price(price))
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, _ := client.New(url, "ct")
	testenv.WaitUntil(t, "the workers to register", 10*time.Second, func() bool {
		ws, _ := c.Workers(ctx)
		return len(ws) == len(prices)
	})
	return c, ran, &mu
}

func oneTask(name string, strategy blueprint.Strategy, maxCost float64) *blueprint.Blueprint {
	bp := blueprint.New(name).Endpoint("v1", "/jobs/"+name)
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "x", MaxCost: maxCost})
	}, blueprint.Using(strategy), blueprint.On("success", "finished"))
	bp.End("finished", nil)
	return bp
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	t.Parallel()
	c, ran, mu := serveWithWorkers(t, oneTask("rr", blueprint.RoundRobin, 0), map[string]float64{"w1": 1, "w2": 1, "w3": 1})
	ctx := context.Background()
	for i := range 30 {
		id, err := c.CreateJob(ctx, "/jobs/rr", nil)
		if err != nil {
			t.Fatal(err)
		}
		if j, err := c.Wait(ctx, id, client.PollEvery(5*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
			t.Fatalf("job %d: %v %v", i, j, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	counts := map[string]int{}
	for id, list := range ran {
		counts[id] = len(*list)
	}
	for id, n := range counts {
		if n < 9 || n > 11 {
			t.Fatalf("round robin over 30 tasks: %v (%s is off by more than one)", counts, id)
		}
	}
}

func TestCheapestWithMaxCostNeverPicksADearerWorker(t *testing.T) {
	t.Parallel()
	c, ran, mu := serveWithWorkers(t, oneTask("cheap", blueprint.Cheapest, 0.02),
		map[string]float64{"cheap-a": 0.01, "cheap-b": 0.02, "dear": 0.05})
	ctx := context.Background()
	var ids []string
	for range 12 {
		id, err := c.CreateJob(ctx, "/jobs/cheap", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		j, err := c.Wait(ctx, id, client.PollEvery(10*time.Millisecond))
		if err != nil || j.Status != protocol.StatusFinished {
			t.Fatalf("job %s: %v %v", id, j, err)
		}
		for _, d := range j.Dispatches {
			if d.WorkerID == "dear" {
				t.Fatalf("cheapest with max_cost 0.02 chose the dearer worker: %+v", d)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(*ran["dear"]); n != 0 {
		t.Fatalf("the worker above max_cost ran %d tasks", n)
	}
	if len(*ran["cheap-a"])+len(*ran["cheap-b"]) != 12 {
		t.Fatal(fmt.Sprint("tasks lost: ", len(*ran["cheap-a"]), len(*ran["cheap-b"])))
	}
}
