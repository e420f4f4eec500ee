package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pythons are the interpreters of the two virtual environments the Python
// systems run in, and the folder of their scripts (python/).
type pythons struct {
	orchestrator string // upstream avtomatika (python/requirements-upstream.txt)
	worker       string // the Python worker SDK (compat/python/requirements-b20.txt)
	scripts      string
	logs         string // where the processes' output goes, one file each
}

// preparePythons makes (or reuses) the two virtual environments under
// $AVTO_VENV_CACHE (default ~/.cache/avtomatika), as compat/python/run.sh
// does: each is made from its pinned requirements file and made again when
// the file or the Python changes. The worker's is run.sh's venv-b20, shared
// with the compatibility suite (same directory, same stamp).
func preparePythons(ctx context.Context) (*pythons, error) {
	here, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	base := os.Getenv("PYTHON")
	if base == "" {
		if base, err = exec.LookPath("python3.11"); err != nil {
			if base, err = exec.LookPath("python3"); err != nil {
				return nil, errors.New("no python3.11 or python3 on PATH (or set PYTHON)")
			}
		}
	}
	cache := os.Getenv("AVTO_VENV_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		cache = filepath.Join(home, ".cache", "avtomatika")
	}
	p := &pythons{scripts: filepath.Join(here, "python")}
	if p.orchestrator, err = venv(ctx, base, filepath.Join(cache, "venv-peers-upstream"), filepath.Join(p.scripts, "requirements-upstream.txt")); err != nil {
		return nil, err
	}
	if p.worker, err = venv(ctx, base, filepath.Join(cache, "venv-b20"), filepath.Join(here, "..", "..", "compat", "python", "requirements-b20.txt")); err != nil {
		return nil, err
	}
	if p.logs, err = os.MkdirTemp("", "avtomatika-peers-"); err != nil {
		return nil, err
	}
	return p, nil
}

// venv returns the interpreter of the virtual environment dir, made from
// the requirements file req by the Python base unless dir already holds
// one made from the same file by the same Python.
func venv(ctx context.Context, base, dir, req string) (string, error) {
	want, err := os.ReadFile(req)
	if err != nil {
		return "", err
	}
	version, err := exec.CommandContext(ctx, base, "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", base, err)
	}
	sum := sha256.Sum256(append(want, version...))
	stamp := hex.EncodeToString(sum[:])
	py := filepath.Join(dir, "bin", "python")
	if got, err := os.ReadFile(filepath.Join(dir, ".requirements-sha256")); err == nil && strings.TrimSpace(string(got)) == stamp {
		if _, err := os.Stat(py); err == nil {
			return py, nil
		}
	}
	fmt.Fprintf(os.Stderr, "== making %s from %s\n", dir, req)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	steps := [][]string{
		{base, "-m", "venv", dir},
		{py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input", "-r", req},
		{py, "-m", "pip", "check"},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("make venv %s: %s: %w", dir, strings.Join(s, " "), err)
		}
	}
	return py, os.WriteFile(filepath.Join(dir, ".requirements-sha256"), []byte(stamp+"\n"), 0o644)
}

// process starts a Python script of python/ with the given environment
// (nothing else of ours is inherited but PATH and HOME), its output
// appended to logs/<name>.log. Cancelling ctx sends SIGTERM, and SIGKILL
// 5 s later if it is still running; the caller waits for it.
func (p *pythons) process(ctx context.Context, name, python, script string, env map[string]string) (*exec.Cmd, error) {
	log, err := os.OpenFile(filepath.Join(p.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, python, filepath.Join(p.scripts, script))
	cmd.Dir = p.scripts
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PYTHONDONTWRITEBYTECODE=1"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

// tail is the end of a process's log, for error messages.
func (p *pythons) tail(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.logs, name+".log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// startWorkers starts n Python SDK workers (python/noop_worker.py), each
// with conc task slots, for the orchestrator at url; stop ends them and
// waits for them.
func (p *pythons) startWorkers(ctx context.Context, url, token string, n, conc int) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var cmds []*exec.Cmd
	stop = func() {
		cancel()
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	for i := range n {
		cmd, err := p.process(ctx, fmt.Sprintf("worker-%d", i), p.worker, "noop_worker.py", map[string]string{
			"ORCHESTRATOR_URL":     url,
			"WORKER_ID":            fmt.Sprintf("bench-py-worker-%d", i),
			"WORKER_TOKEN":         token,
			"MAX_CONCURRENT_TASKS": strconv.Itoa(conc),
			"LOG_LEVEL":            "WARNING",
			// SIGTERM ends a worker within 2 s (the SDK waits up to 30 s for
			// running tasks; a no-op has none).
			"WORKER_SHUTDOWN_TIMEOUT": "2",
		})
		if err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
	return stop, nil
}
