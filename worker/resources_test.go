package worker

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeNvidiaSMI puts an nvidia-smi script on PATH that records its arguments
// and prints the given fixture (or fails when fixture is empty).
func fakeNvidiaSMI(t *testing.T, fixture string) (argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	body := "#!/bin/sh\necho \"$@\" > '" + argsFile + "'\n"
	if fixture == "" {
		body += "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9\n"
	} else {
		abs, err := filepath.Abs(fixture)
		if err != nil {
			t.Fatal(err)
		}
		body += "cat '" + abs + "'\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return argsFile
}

func TestGPUDetectionH100(t *testing.T) {
	// Not parallel: fakeNvidiaSMI sets PATH (t.Setenv).
	argsFile := fakeNvidiaSMI(t, "testdata/nvidia-smi/query-noheader-nounits.csv")
	gpus, err := defaultDetector().gpus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []GPU{{ID: "0", Model: "NVIDIA H100 80GB HBM3", MemoryGB: 80, UUID: "GPU-5cad982b-cd27-607a-a774-32823ed5361b"}}
	if !reflect.DeepEqual(gpus, want) {
		t.Errorf("gpus = %+v, want %+v", gpus, want)
	}
	args, _ := os.ReadFile(argsFile)
	if got := strings.TrimSpace(string(args)); got != strings.Join(nvidiaSMIArgs, " ") {
		t.Errorf("nvidia-smi called with %q", got)
	}
}

func TestGPUDetectionTwoGPUs(t *testing.T) {
	// Not parallel: fakeNvidiaSMI sets PATH (t.Setenv).
	fakeNvidiaSMI(t, "testdata/nvidia-smi/two-gpus.csv")
	gpus, err := defaultDetector().gpus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[1].ID != "1" || gpus[1].Model != "NVIDIA A100-SXM4-40GB" || gpus[1].MemoryGB != 40 {
		t.Fatalf("gpus = %+v", gpus)
	}
	res := wireResources(Resources{GPUs: gpus, CPUCores: 2})
	if res.Properties["gpu_count"] != 2 || len(res.Devices) != 2 {
		t.Errorf("resources: %+v", res)
	}
	if gi := res.Properties["gpu_info"].(map[string]any); gi["model"] != "NVIDIA H100 80GB HBM3" || gi["vram_gb"] != 80.0 {
		t.Errorf("gpu_info must describe the first GPU: %v", gi)
	}
}

func TestGPUDetectionFailingOrMissing(t *testing.T) {
	fakeNvidiaSMI(t, "")
	gpus, err := defaultDetector().gpus(context.Background())
	if len(gpus) != 0 || err == nil || !strings.Contains(err.Error(), "NVIDIA-SMI has failed") {
		t.Errorf("failing nvidia-smi: %v %v", gpus, err)
	}
	// resolve turns it into a warning, never a failure.
	res, warns := defaultDetector().resolve(context.Background(), Resources{})
	if len(res.GPUs) != 0 || len(warns) == 0 {
		t.Errorf("resolve: %+v %v", res, warns)
	}

	t.Setenv("PATH", t.TempDir())
	gpus, err = defaultDetector().gpus(context.Background())
	if len(gpus) != 0 || err != nil {
		t.Errorf("missing nvidia-smi: %v %v", gpus, err)
	}
}

func TestDeclaredGPUSkipsDetection(t *testing.T) {
	// Not parallel: fakeNvidiaSMI sets PATH (t.Setenv).
	argsFile := fakeNvidiaSMI(t, "testdata/nvidia-smi/query-noheader-nounits.csv")
	d := defaultDetector()
	res, _ := d.resolve(context.Background(), Resources{GPUs: []GPU{{ID: "0", Model: "NVIDIA T4", MemoryGB: 16}}})
	if len(res.GPUs) != 1 || res.GPUs[0].Model != "NVIDIA T4" {
		t.Errorf("declared GPU replaced: %+v", res.GPUs)
	}
	if _, err := os.Stat(argsFile); err == nil {
		t.Error("nvidia-smi ran although a GPU was declared")
	}
	w := wireResources(res)
	if gi := w.Properties["gpu_info"].(map[string]any); gi["model"] != "NVIDIA T4" || gi["vram_gb"] != 16.0 {
		t.Errorf("gpu_info: %v", gi)
	}
	if res.CPUCores < 1 {
		t.Errorf("CPU cores not detected: %d", res.CPUCores)
	}
	// Explicit properties win.
	w = wireResources(Resources{CPUCores: 2, Properties: map[string]any{"cpu_cores": 64, "ssd": true}})
	if w.Properties["cpu_cores"] != 64 || w.Properties["ssd"] != true {
		t.Errorf("properties: %v", w.Properties)
	}
}

func TestWorkerRegistersDetectedGPU(t *testing.T) {
	// Not parallel: fakeNvidiaSMI sets PATH (t.Setenv).
	fakeNvidiaSMI(t, "testdata/nvidia-smi/query-noheader-nounits.csv")
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.Resources = Resources{} // detect everything
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.waitUntil(5*time.Second, "a registration", func() bool { regs, _, _, _ := f.snapshot(); return len(regs) > 0 })
	regs, _, _, _ := f.snapshot()
	res := regs[0].Doc["resources"].(map[string]any)
	props := res["properties"].(map[string]any)
	if props["cpu_cores"].(float64) < 1 || props["gpu_count"] != 1.0 {
		t.Errorf("properties: %v", props)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && props["ram_gb"].(float64) <= 0 {
		t.Errorf("ram_gb not detected: %v", props)
	}
	gi := props["gpu_info"].(map[string]any)
	if gi["model"] != "NVIDIA H100 80GB HBM3" || gi["vram_gb"] != 80.0 {
		t.Errorf("gpu_info: %v", gi)
	}
	dev := res["devices"].([]any)[0].(map[string]any)
	dp := dev["properties"].(map[string]any)
	if dev["type"] != "gpu" || dev["id"] != "0" || dp["memory_gb"] != 80.0 || dp["uuid"] != "GPU-5cad982b-cd27-607a-a774-32823ed5361b" {
		t.Errorf("device: %v", dev)
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	gb, err := parseMeminfo(strings.NewReader("MemTotal:       32768000 kB\nMemFree:  100 kB\n"))
	if err != nil || gb != 31.3 {
		t.Errorf("parseMeminfo = %v, %v; want 31.3", gb, err)
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: lots kB\n", "MemTotal: 5 MB\n"} {
		if _, err := parseMeminfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMeminfo(%q): no error", bad)
		}
	}
	d := detector{meminfo: filepath.Join(t.TempDir(), "missing")}
	if _, err := d.memoryGB(); err == nil {
		t.Error("missing meminfo: no error")
	}
}

func TestParseNvidiaSMI(t *testing.T) {
	t.Parallel()
	gpus, err := parseNvidiaSMI([]byte("0, Tesla T4, [N/A], 15360 MiB\n\n1, Tiny, GPU-x, 512\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []GPU{{ID: "0", Model: "Tesla T4", MemoryGB: 15}, {ID: "1", Model: "Tiny", MemoryGB: 0.5, UUID: "GPU-x"}}
	if !reflect.DeepEqual(gpus, want) {
		t.Errorf("got %+v", gpus)
	}
	if _, err := parseNvidiaSMI([]byte("No devices were found\n")); err == nil {
		t.Error("garbage output: no error")
	}
	if gpus, err := parseNvidiaSMI(nil); err != nil || gpus != nil {
		t.Errorf("empty output: %v %v", gpus, err)
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	if raw, err := os.ReadFile("testdata/nvidia-smi/two-gpus.csv"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("0, Tesla T4, [N/A], 15360\n"))
	f.Add([]byte("x,,,\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		gpus, err := parseNvidiaSMI(raw)
		if err != nil && gpus != nil {
			t.Fatal("GPUs returned with an error")
		}
		for _, g := range gpus {
			if g.Model == "" || g.ID == "" || g.MemoryGB < 0 {
				t.Fatalf("bad GPU %+v", g)
			}
		}
		_ = wireResources(Resources{GPUs: gpus})
	})
}
