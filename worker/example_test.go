package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// A GPU transcoding worker configured from the environment (WORKER_ID,
// WORKER_TOKEN, ORCHESTRATOR_URL, ...), declaring a T4 even on a machine
// without one.
func Example() {
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	cfg.Type = "gpu_worker"
	cfg.MaxConcurrentTasks = 2
	cfg.EnableWebSockets = true // lets the orchestrator cancel running tasks
	cfg.Resources.GPUs = []worker.GPU{{ID: "0", Model: "NVIDIA T4", MemoryGB: 16}}

	w, err := worker.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	w.Handle("transcode_video", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		var p struct {
			Video   string `json:"video"`
			Quality string `json:"quality"`
		}
		if err := t.Decode(&p); err != nil {
			return worker.Result{}, err // INVALID_INPUT_ERROR
		}
		if p.Video == "" {
			return worker.Result{}, worker.InvalidInput(errors.New("missing video"))
		}
		for i := 1; i <= 4; i++ {
			if err := ctx.Err(); err != nil {
				return worker.Result{}, err // cancelled by the orchestrator or at shutdown
			}
			_ = t.SendProgress(ctx, float64(i)/4, fmt.Sprintf("segment %d of 4", i))
		}
		out := map[string]any{"output": p.Video + ".mp4"}
		if p.Quality == "low" {
			return worker.Result{Status: "needs_review", Data: out}, nil
		}
		return worker.Result{Data: out}, nil
	}, worker.Price(0.0005), worker.OutputStatuses("needs_review"), worker.Limit(1))

	w.OnCommand("reload_model", func(ctx context.Context, cmd protocol.Command) error {
		log.Printf("reloading %v", cmd.Params["model"])
		return nil
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Handlers choose how the orchestrator treats a failure by the error they
// return.
func ExampleTaskError() {
	err := fmt.Errorf("loading model: %w", worker.ResourceExhausted(errors.New("out of VRAM")))
	var te *worker.TaskError
	if errors.As(err, &te) {
		fmt.Println(te.Code)
	}
	// Output: RESOURCE_EXHAUSTED_ERROR
}
