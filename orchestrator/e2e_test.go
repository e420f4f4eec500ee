package orchestrator_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pipeline: prepare on a worker, wait for a human, analyse three files in
// parallel, aggregate. "hold" dispatches a task that runs until cancelled.
func pipeline() *blueprint.Blueprint {
	bp := blueprint.New("pipeline").Endpoint("v1", "/jobs/pipeline")
	bp.Start("start", func(c *blueprint.Context) error {
		if c.Input("hold") == true {
			return c.GoTo("hold")
		}
		return c.Dispatch(blueprint.Task{Type: "prepare", Params: map[string]any{"path": c.Input("path")}})
	}, blueprint.To("hold"), blueprint.On("success", "review"), blueprint.On("failure", "failed"))
	bp.State("hold", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "hold"})
	}, blueprint.On("success", "finished"))
	bp.State("review", func(c *blueprint.Context) error {
		return c.AwaitApproval("approve the prepared input?")
	}, blueprint.On("approved", "analyze"), blueprint.On("rejected", "failed"))
	bp.State("analyze", func(c *blueprint.Context) error {
		var tasks []blueprint.Task
		for _, f := range []string{"a.txt", "b.txt", "c.txt"} {
			tasks = append(tasks, blueprint.Task{Type: "analyze", Params: map[string]any{"file": f}})
		}
		return c.DispatchParallel(tasks)
	}, blueprint.FanIn("aggregate"))
	bp.Aggregator("aggregate", func(c *blueprint.Context) error {
		by := map[string]any{}
		for _, r := range c.Branches() {
			by[r.Data["file"].(string)] = r.WorkerID
		}
		if err := c.Set("analysed_by", by); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	bp.End("finished", nil)
	bp.End("failed", nil)
	return bp
}

func TestEndToEndOverTheNetwork(t *testing.T) {
	t.Parallel()
	o, err := orchestrator.New(orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "fleet-token", PollTimeout: 2 * time.Second,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- o.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String()

	handlerCancelled := make(chan string, 1)
	var prepared atomic.Int64
	newWorker := func(id string) *worker.Worker {
		w, err := worker.New(worker.Config{
			ID: id, Token: "fleet-token", Orchestrators: []worker.Orchestrator{{URL: url}},
			MaxConcurrentTasks: 4, EnableWebSockets: true, Logger: quiet(), PollTimeout: time.Second,
			Resources: worker.Resources{DisableDetection: true, CPUCores: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Handle("prepare", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			prepared.Add(1)
			if err := task.SendProgress(ctx, 0.5, "preparing"); err != nil {
				return worker.Result{}, err
			}
			return worker.Result{Data: map[string]any{"prepared": task.Params()["path"]}}, nil
		}, worker.Price(0.01))
		w.Handle("analyze", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			time.Sleep(30 * time.Millisecond)
			return worker.Result{Data: map[string]any{"file": task.Params()["file"]}}, nil
		}, worker.Price(0.01))
		w.Handle("hold", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			<-ctx.Done()
			handlerCancelled <- task.ID()
			return worker.Result{}, ctx.Err()
		}, worker.Price(0.01))
		return w
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	workersDone := make(chan error, 2)
	for _, id := range []string{"worker-a", "worker-b"} {
		w := newWorker(id)
		go func() { workersDone <- w.Run(wctx) }()
	}
	defer func() {
		stopWorkers()
		for range 2 {
			if err := <-workersDone; err != nil {
				t.Errorf("worker: %v", err)
			}
		}
	}()

	c, err := client.New(url, "acme-token")
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("two workers", func() bool { ws, _ := c.Workers(ctx); return len(ws) == 2 })

	// Dispatch, approval, fan-out.
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"path": "/in/video.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the approval", func() bool {
		j, err := c.Job(ctx, id)
		return err == nil && j.Status == protocol.StatusWaitingForHuman
	})
	j, _ := c.Job(ctx, id)
	if j.StateHistory["prepared"] != "/in/video.mp4" || j.Approval == nil || prepared.Load() != 1 {
		t.Fatalf("before approval: %+v", j)
	}
	if err := c.Approve(ctx, id, "maybe"); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("invalid decision: %v", err)
	}
	if err := c.Approve(ctx, id, "approved"); err != nil {
		t.Fatal(err)
	}
	var seen []protocol.JobStatus
	final, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond), client.OnProgress(func(j *protocol.Job) { seen = append(seen, j.Status) }))
	if err != nil {
		t.Fatal(err)
	}
	by, _ := final.StateHistory["analysed_by"].(map[string]any)
	if final.Status != protocol.StatusFinished || len(by) != 3 || final.Result == nil {
		t.Fatalf("final job %+v", final)
	}
	if len(seen) == 0 || seen[len(seen)-1] != protocol.StatusFinished {
		t.Fatalf("progress callbacks %v", seen)
	}

	// A cancel reaches the running handler through the WebSocket.
	hold, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the task to run", func() bool {
		j, err := c.Job(ctx, hold)
		return err == nil && len(j.Tasks) == 1 && j.Tasks[0].State == "running"
	})
	j, _ = c.Job(ctx, hold)
	if err := c.Cancel(ctx, hold); err != nil {
		t.Fatal(err)
	}
	select {
	case taskID := <-handlerCancelled:
		if taskID != j.Tasks[0].ID {
			t.Fatalf("cancelled task %s, want %s", taskID, j.Tasks[0].ID)
		}
	case <-time.After(2 * time.Second): // well under the heartbeat interval: the WebSocket carried it
		t.Fatal("the running handler was not cancelled")
	}
	if j, _ := c.Job(ctx, hold); j.Status != protocol.StatusCancelled {
		t.Fatalf("held job: %+v", j)
	}
	if err := c.Cancel(ctx, hold); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("second cancel: %v", err)
	}
}
