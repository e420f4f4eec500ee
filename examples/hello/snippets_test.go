package main

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// The README's Go snippets other than main.go: the body of each function
// below is one of them, character for character (TestReadmeSnippets checks
// it), so that they compile. They are never called.

func readmeBlueprint(ctx context.Context) {
	bp := blueprint.New("resize_image").Endpoint("v1", "/jobs/resize")

	bp.Start("start", func(c *blueprint.Context) error {
		return c.GoTo("resize")
	}, blueprint.To("resize"))

	// Small images skip the worker: conditional handlers, first match wins.
	bp.State("resize", func(c *blueprint.Context) error {
		return c.GoTo("finished")
	}, blueprint.When(`initial_data.width <= 64`), blueprint.To("finished"))

	bp.State("resize", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "resize", Params: map[string]any{"url": c.Input("url")}})
	}, blueprint.Using(blueprint.Cheapest),
		blueprint.On("success", "finished"), blueprint.On("failure", "resize_failed"))

	bp.End("finished", nil)
	bp.End("resize_failed", nil)

	o, _ := orchestrator.New(orchestrator.Config{Addr: ":8080", ClientsFile: "clients.toml", GlobalWorkerToken: "..."})
	o.Register(bp)
	o.ListenAndServe(ctx)
}

func readmeWorker(ctx context.Context) {
	w, _ := worker.New(worker.Config{ID: "resizer-1", Token: "...",
		Orchestrators: []worker.Orchestrator{{URL: "http://localhost:8080"}}, MaxConcurrentTasks: 4})
	w.Handle("resize", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		_ = t.SendProgress(ctx, 0.5, "half way")
		return worker.Result{Data: map[string]any{"url": "..."}}, nil
	}, worker.Price(0.001))
	w.Run(ctx) // until ctx ends, then a graceful shutdown
}

var _, _ = readmeBlueprint, readmeWorker
