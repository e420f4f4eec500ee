package orchestrator_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// TestRealGPUWorkerTakesGPUTask runs only where AVTO_TEST_REAL_GPU=1 says
// the machine has an NVIDIA GPU and its nvidia-smi (elsewhere the fake
// nvidia-smi tests of the worker package cover detection): an SDK worker
// that declares nothing detects the GPU, registers it, and is chosen for a
// task that needs more video memory than the fixtures' GPUs have.
func TestRealGPUWorkerTakesGPUTask(t *testing.T) {
	if os.Getenv("AVTO_TEST_REAL_GPU") != "1" {
		t.Skip("AVTO_TEST_REAL_GPU=1 runs this on a machine with an NVIDIA GPU")
	}
	out, err := exec.Command("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		t.Fatalf("nvidia-smi: %v", err)
	}
	first := strings.Split(strings.TrimSpace(string(out)), "\n")[0]
	t.Logf("nvidia-smi: %s", first)

	bp := blueprint.New("gpu").Endpoint("v1", "/jobs/gpu")
	bp.Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "render", Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 24}}})
	}, blueprint.On("success", "finished"))
	bp.End("finished", nil)
	_, url := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
	}, bp)
	c, _ := client.New(url, "acme-token")

	w, err := worker.New(worker.Config{ID: "gpu-1", Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(), PollTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("render", func(context.Context, *worker.Task) (worker.Result, error) {
		return worker.Result{Data: map[string]any{"rendered": true}}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	id, err := c.CreateJob(ctx, "/jobs/gpu", nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	j, err := c.Wait(wctx, id, client.PollEvery(20*time.Millisecond))
	if err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job: %+v %v", j, err)
	}
	ws, err := c.Workers(ctx)
	if err != nil || len(ws) != 1 || ws[0].Resources == nil {
		t.Fatalf("workers: %+v %v", ws, err)
	}
	gi, _ := ws[0].Resources.Properties["gpu_info"].(map[string]any)
	model, _ := gi["model"].(string)
	vram, _ := gi["vram_gb"].(float64)
	t.Logf("registered: gpu_info=%v gpu_count=%v devices=%d cpu_cores=%v ram_gb=%v", gi,
		ws[0].Resources.Properties["gpu_count"], len(ws[0].Resources.Devices), ws[0].Resources.Properties["cpu_cores"], ws[0].Resources.Properties["ram_gb"])
	if !strings.HasPrefix(first, model) || vram < 24 {
		t.Errorf("detected gpu_info %v, nvidia-smi says %q", gi, first)
	}
}
