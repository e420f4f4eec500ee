package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// nvidiaSMIQuery is the nvidia-smi query the worker runs. Extra columns after
// these four are ignored, so richer output (such as the fixtures') parses too.
var nvidiaSMIArgs = []string{"--query-gpu=index,name,uuid,memory.total", "--format=csv,noheader,nounits"}

// detector finds the machine's hardware. Its fields exist for tests.
type detector struct {
	meminfo   string // path of /proc/meminfo
	nvidiaSMI string // command name or path, looked up on PATH
	timeout   time.Duration
}

func defaultDetector() detector {
	return detector{meminfo: "/proc/meminfo", nvidiaSMI: "nvidia-smi", timeout: 10 * time.Second}
}

// resolve completes declared resources with what the machine has.
func (d detector) resolve(ctx context.Context, r Resources) (Resources, []error) {
	if r.DisableDetection {
		return r, nil
	}
	var warns []error
	if r.CPUCores == 0 {
		r.CPUCores = runtime.NumCPU()
	}
	if r.RAMGB == 0 {
		gb, err := d.memoryGB()
		if err != nil {
			warns = append(warns, fmt.Errorf("memory detection: %w", err))
		}
		r.RAMGB = gb
	}
	if len(r.GPUs) == 0 && !hasGPUDevice(r.Devices) {
		gpus, err := d.gpus(ctx)
		if err != nil {
			warns = append(warns, fmt.Errorf("GPU detection: %w", err))
		}
		r.GPUs = gpus
	}
	return r, warns
}

func hasGPUDevice(devs []protocol.HardwareDevice) bool {
	for _, d := range devs {
		if strings.EqualFold(d.Type, "gpu") {
			return true
		}
	}
	return false
}

// memoryGB reads MemTotal from /proc/meminfo, in GiB rounded to 0.1.
func (d detector) memoryGB() (float64, error) {
	f, err := os.Open(d.meminfo)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMeminfo(f)
}

func parseMeminfo(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "MemTotal" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("bad MemTotal %q", rest)
		}
		if len(fields) > 1 && !strings.EqualFold(fields[1], "kB") {
			return 0, fmt.Errorf("unknown MemTotal unit %q", fields[1])
		}
		return math.Round(kb/(1024*1024)*10) / 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal line")
}

// gpus runs nvidia-smi. A missing binary means no GPU and no error; a failing
// one means no GPU and an error to log.
func (d detector) gpus(ctx context.Context) ([]GPU, error) {
	path, err := exec.LookPath(d.nvidiaSMI)
	if err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, nvidiaSMIArgs...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, fmt.Errorf("%s: %w: %s", path, err, msg)
	}
	return parseNvidiaSMI(stdout.Bytes())
}

// parseNvidiaSMI parses "index, name, uuid, memory.total[, ...]" lines in
// csv,noheader,nounits form (memory in MiB). Lines that do not parse are
// skipped; an output with none that parses is an error.
func parseNvidiaSMI(out []byte) ([]GPU, error) {
	var gpus []GPU
	var bad int
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			bad++
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil || idx < 0 || f[1] == "" {
			bad++
			continue
		}
		mem := strings.TrimSpace(strings.TrimSuffix(f[3], "MiB"))
		mib, err := strconv.ParseFloat(mem, 64)
		g := GPU{ID: strconv.Itoa(idx), Model: f[1]}
		if f[2] != "" && !strings.HasPrefix(f[2], "[") { // "[N/A]"
			g.UUID = f[2]
		}
		if err == nil && mib > 0 && !math.IsInf(mib, 0) {
			g.MemoryGB = roundGB(mib / 1024)
		}
		gpus = append(gpus, g)
	}
	if len(gpus) == 0 && bad > 0 {
		return nil, fmt.Errorf("unexpected nvidia-smi output (%d unreadable lines)", bad)
	}
	return gpus, nil
}

// roundGB rounds a size in GiB: to a whole number from 1 GiB up (81559 MiB
// is reported as 80, matching the card's name), to 0.1 below.
func roundGB(gb float64) float64 {
	if gb >= 1 {
		return math.Round(gb)
	}
	return math.Round(gb*10) / 10
}

// wireResources is the resources object of the registration: GPUs as
// devices, then Devices; properties cpu_cores, ram_gb, gpu_count and gpu_info
// (the first GPU's model and vram_gb), then Properties over them.
func wireResources(r Resources) *protocol.Resources {
	out := &protocol.Resources{Properties: map[string]any{}}
	for _, g := range r.GPUs {
		props := map[string]any{"memory_gb": g.MemoryGB}
		if g.UUID != "" {
			props["uuid"] = g.UUID
		}
		out.Devices = append(out.Devices, protocol.HardwareDevice{Type: "gpu", Model: g.Model, ID: g.ID, Properties: props})
	}
	out.Devices = append(out.Devices, r.Devices...)
	if r.CPUCores > 0 {
		out.Properties["cpu_cores"] = r.CPUCores
	}
	if r.RAMGB > 0 {
		out.Properties["ram_gb"] = r.RAMGB
	}
	var gpuCount int
	var first *protocol.HardwareDevice
	for i := range out.Devices {
		if strings.EqualFold(out.Devices[i].Type, "gpu") {
			gpuCount++
			if first == nil {
				first = &out.Devices[i]
			}
		}
	}
	if first != nil {
		out.Properties["gpu_count"] = gpuCount
		info := map[string]any{"model": first.Model}
		if mem, ok := first.Properties["memory_gb"]; ok {
			info["vram_gb"] = mem
		}
		out.Properties["gpu_info"] = info
	}
	for k, v := range r.Properties {
		out.Properties[k] = v
	}
	return out
}
