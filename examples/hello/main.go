// Command hello: one blueprint, one worker and one client call in one process.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	// The blueprint: one task for a worker, then the end.
	bp := blueprint.New("hello").Endpoint("v1", "/jobs/hello")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "greet", Params: map[string]any{"name": c.Input("name")}})
	}, blueprint.On("success", "finished"))
	bp.End("finished", nil)

	// The orchestrator (embedded defaults: in-memory store, no services) and the worker.
	o, err := orchestrator.New(orchestrator.Config{GlobalWorkerToken: "worker-secret", Clients: []orchestrator.Client{{Name: "me", Token: "client-secret"}}})
	if err != nil {
		return err
	}
	if err := o.Register(bp); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	w, err := worker.New(worker.Config{ID: "hello-worker", Token: "worker-secret", Orchestrators: []worker.Orchestrator{{URL: url}}})
	if err != nil {
		return err
	}
	w.Handle("greet", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		return worker.Result{Data: map[string]any{"greeting": fmt.Sprintf("Hello, %v!", t.Params()["name"])}}, nil
	})

	// Both serve until run returns; SIGINT/SIGTERM (ctx) stops the worker, which goes offline first.
	serverCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	workerCtx, stopWorker := context.WithCancel(ctx)
	served, stopped := make(chan error, 1), make(chan error, 1)
	go func() { served <- o.Serve(serverCtx, ln) }()
	go func() { stopped <- w.Run(workerCtx) }()
	defer func() { stopWorker(); werr := <-stopped; stopServer(); err = errors.Join(err, werr, <-served) }()

	// The client: one job, awaited; the worker's data lands in state_history.
	c, err := client.New(url, "client-secret")
	if err != nil {
		return err
	}
	id, err := c.CreateJob(ctx, "/jobs/hello", map[string]any{"name": "world"})
	if err != nil {
		return err
	}
	job, err := c.Wait(ctx, id)
	if err == nil {
		fmt.Printf("job %s %s: %v\n", id, job.Status, job.StateHistory["greeting"])
	}
	return err
}
