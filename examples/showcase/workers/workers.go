// Package workers holds the showcase's three workers, as the seed describes
// them: a GPU worker (transcoding, analysis, blob processing), a reliable CPU
// worker and an unreliable one whose hardware fails half of its tasks.
package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/simulate"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// Options tune the workers.
type Options struct {
	// Deterministic (DETERMINISTIC_WORKER) makes every worker succeed with
	// fixed durations: no random outcome anywhere.
	Deterministic bool
	// TimeScale multiplies every simulated duration (zero means 1).
	TimeScale float64
	// ReportDir is where process_blobs writes its reports when the worker
	// has no blob storage (default: the system temp dir).
	ReportDir string
}

// Kind is one of the showcase's workers.
type Kind struct {
	Name string
	// Defaults are environment defaults: the worker's identity, token,
	// prices and hardware. The environment overrides each of them.
	Defaults map[string]string
	// Register adds the worker's skills.
	Register func(w *worker.Worker, o Options)
}

// Kinds lists the workers by the name the showcase's worker command takes.
func Kinds() map[string]Kind {
	return map[string]Kind{
		"gpu": {Name: "gpu", Register: registerGPU, Defaults: map[string]string{
			"WORKER_ID": "gpu-worker-01", "WORKER_TYPE": "gpu_worker", "WORKER_TOKEN": "super-secret-gpu-worker-token",
			"COST_PER_SKILL":       `{"transcode_video": 0.0005, "analyze_file": 0.0001, "process_blobs": 0.0002}`,
			"MAX_CONCURRENT_TASKS": "2", "CPU_CORES": "8", "RAM_GB": "32",
			"GPU_MODEL": "NVIDIA T4", "GPU_VRAM_GB": "16", "WORKER_DETECT_RESOURCES": "false",
			"INSTALLED_SOFTWARE":       `{"ffmpeg": "5.1"}`,
			"INSTALLED_ARTIFACTS":      `[{"name": "stable-diffusion-1.5", "version": "1.5", "type": "model"}]`,
			"WORKER_ENABLE_WEBSOCKETS": "true", "WORKER_PORT": "8083",
		}},
		"cpu-reliable": {Name: "cpu-reliable", Register: registerCPU(false), Defaults: map[string]string{
			"WORKER_ID": "cpu-worker-02", "WORKER_TYPE": "cpu_worker", "WORKER_TOKEN": "super-secret-cpu-worker-token-2",
			"COST_PER_SKILL": `{"analyze_file": 0.0001}`, "MAX_CONCURRENT_TASKS": "4", "CPU_CORES": "4", "RAM_GB": "8",
			"WORKER_DETECT_RESOURCES": "false", "WORKER_ENABLE_WEBSOCKETS": "true", "WORKER_PORT": "8084",
		}},
		"cpu-unreliable": {Name: "cpu-unreliable", Register: registerCPU(true), Defaults: map[string]string{
			"WORKER_ID": "cpu-worker-01", "WORKER_TYPE": "cpu_worker", "WORKER_TOKEN": "super-secret-cpu-worker-token",
			"COST_PER_SKILL": `{"analyze_file": 0.00005}`, "MAX_CONCURRENT_TASKS": "4", "CPU_CORES": "4", "RAM_GB": "8",
			"WORKER_DETECT_RESOURCES": "false", "WORKER_ENABLE_WEBSOCKETS": "true", "WORKER_PORT": "8085",
		}},
	}
}

// Names are the worker kinds in a stable order.
var Names = []string{"gpu", "cpu-reliable", "cpu-unreliable"}

// sleep simulates work; it ends early when the task is cancelled.
func (o Options) sleep(ctx context.Context, d time.Duration) error {
	return simulate.Sleep(ctx, d, o.TimeScale)
}

// between returns a random duration in [lo, hi), or lo when deterministic
// or when the range is empty.
func (o Options) between(lo, hi time.Duration) time.Duration {
	if o.Deterministic || hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo)
}

func registerGPU(w *worker.Worker, o Options) {
	w.Handle("transcode_video", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		var p struct {
			InputPath string `json:"input_path"`
			Trigger   string `json:"trigger"`
		}
		if err := t.Decode(&p); err != nil {
			return worker.Result{}, err
		}
		switch p.Trigger {
		case "transient":
			return worker.Result{}, worker.Transient(errors.New("GPU driver hiccup (triggered)"))
		case "security":
			return worker.Result{}, worker.Security(errors.New("the input failed a security scan (triggered)"))
		case "resource":
			return worker.Result{}, worker.ResourceExhausted(errors.New("out of GPU memory (triggered)"))
		}
		for i := 1; i <= 5; i++ {
			if err := o.sleep(ctx, o.between(500*time.Millisecond, time.Second)); err != nil {
				return worker.Result{}, err
			}
			if err := t.SendProgress(ctx, float64(i)/5, fmt.Sprintf("Step %d of 5 complete.", i)); err != nil {
				t.Logger().Warn("progress not sent", "error", err)
			}
		}
		if !o.Deterministic {
			switch r := rand.Float64(); {
			case r < 0.1:
				return worker.Result{}, worker.Permanent(errors.New("the source codec is not supported"))
			case r < 0.2:
				return worker.Result{Status: "needs_review", Data: map[string]any{"reason": "Low quality source detected"}}, nil
			}
		}
		return worker.Result{Data: map[string]any{"output_path": "/path/to/transcoded.mp4", "duration": 120}}, nil
	}, worker.Price(0.0005), worker.OutputStatuses("needs_review"), worker.Description("Transcodes a video on the GPU"))

	w.Handle("analyze_file", analyze(o, "gpu-worker-01", time.Second, time.Second, false), worker.Price(0.0001))

	w.Handle("process_blobs", processBlobs(o), worker.Price(0.0002),
		worker.Description("Writes a report of the analysis and of the input files; the SDK uploads it to blob storage"))
}

// processBlobs writes a report file: the analysis summary and, for every
// input file (s3:// URIs in params.inputs, which the SDK downloaded), its
// size and SHA-256. With blob storage the report is written in the task's
// folder and the SDK uploads it (report_path becomes its s3:// URI);
// without, it goes to ReportDir and report_path is a local path.
func processBlobs(o Options) worker.Handler {
	var reports sync.Mutex
	return func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		var p struct {
			VideoID  string         `json:"video_id"`
			Analysis map[string]any `json:"analysis_summary"`
			Inputs   []string       `json:"inputs"`
		}
		if err := t.Decode(&p); err != nil {
			return worker.Result{}, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "report for job %s\nvideo: %s\ncreated: %s\nanalysis: %d files\n", t.JobID(), p.VideoID,
			time.Now().UTC().Format(time.RFC3339), len(p.Analysis))
		for _, in := range p.Inputs {
			data, err := os.ReadFile(in)
			if err != nil {
				return worker.Result{}, worker.InvalidInput(fmt.Errorf("input %s: %w", in, err))
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(&b, "input %s: %d bytes, sha256 %s\n", filepath.Base(in), len(data), hex.EncodeToString(sum[:]))
		}
		if err := o.sleep(ctx, 200*time.Millisecond); err != nil {
			return worker.Result{}, err
		}
		name := "report-" + t.JobID() + ".txt"
		var path string
		if t.Blobs() != nil {
			var err error
			if path, err = t.Path(name); err != nil {
				return worker.Result{}, err
			}
		} else {
			dir := o.ReportDir
			if dir == "" {
				dir = os.TempDir()
			}
			path = filepath.Join(dir, "avtomatika-"+name)
			reports.Lock()
			defer reports.Unlock()
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return worker.Result{}, fmt.Errorf("write report: %w", err)
		}
		return worker.Result{Data: map[string]any{"report_path": path, "inputs": len(p.Inputs)}}, nil
	}
}

func registerCPU(unreliable bool) func(w *worker.Worker, o Options) {
	return func(w *worker.Worker, o Options) {
		name := "cpu-worker-02"
		if unreliable {
			name = "cpu-worker-01"
		}
		w.Handle("analyze_file", analyze(o, name, 500*time.Millisecond, 1500*time.Millisecond, unreliable))
	}
}

// analyze simulates a file analysis. An unreliable worker fails half of its
// tasks: a fault of its hardware, not of the input, so it reports a
// transient error that the orchestrator retries elsewhere (and holds
// against the worker's reputation).
func analyze(o Options, location string, lo, hi time.Duration, unreliable bool) worker.Handler {
	return func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		var p struct {
			FileName string `json:"file_name"`
		}
		if err := t.Decode(&p); err != nil {
			return worker.Result{}, err
		}
		if err := o.sleep(ctx, o.between(lo, hi)); err != nil {
			return worker.Result{}, err
		}
		if unreliable && !o.Deterministic && rand.Float64() < 0.5 {
			return worker.Result{}, worker.Transient(errors.New("Simulated unreliable hardware"))
		}
		codec := map[string]string{".aac": "aac", ".h264": "h264", ".srt": "subrip", ".txt": "text"}[filepath.Ext(p.FileName)]
		if codec == "" {
			codec = "unknown"
		}
		return worker.Result{Data: map[string]any{"analysis": map[string]any{
			"file_name": p.FileName, "size_kb": 100 + len(p.FileName)*37, "codec": codec, "location": location,
		}}}, nil
	}
}
