package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary runs main when asked, so that the tests run the program as
// a process of its own, signals included.
func TestMain(m *testing.M) {
	if os.Getenv("AVTO_HELLO_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func hello(t *testing.T) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AVTO_HELLO_MAIN=1")
	return cmd
}

func TestHelloRunsAJob(t *testing.T) {
	t.Parallel()
	cmd := hello(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hello: %v\n%s", err, stderr.String())
	}
	if !regexp.MustCompile(`^job [0-9a-f-]{36} finished: Hello, world!\n$`).Match(out) {
		t.Errorf("hello printed %q, want the finished job and its greeting", out)
	}
	checkCleanStop(t, stderr.String())
}

// SIGTERM (or SIGINT) while the client waits stops the program: the worker
// first, then the orchestrator, and it exits 0 without an error.
func TestHelloStopsOnSignal(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := hello(t)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		lines := bufio.NewScanner(pipe)
		for lines.Scan() && !strings.Contains(lines.Text(), "registered worker_id=hello-worker") {
			stderr.WriteString(lines.Text() + "\n")
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(pipe)
		stderr.Write(rest)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: hello exited with %v\n%s", sig, err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: hello still runs 30 s after the signal\n%s", sig, stderr.String())
		}
		if strings.Contains(stderr.String(), "hello:") {
			t.Errorf("%v: hello reported an error:\n%s", sig, stderr.String())
		}
		checkCleanStop(t, stderr.String())
	}
}

// checkCleanStop: the worker told the orchestrator it goes offline and
// stopped before the orchestrator did.
func checkCleanStop(t *testing.T, logs string) {
	t.Helper()
	w, o := strings.Index(logs, "worker stopped"), strings.Index(logs, "orchestrator shutting down")
	if w < 0 || o < 0 || w > o || strings.Contains(logs, "offline heartbeat failed") {
		t.Errorf("want the worker's offline heartbeat delivered, the worker stopped, then the orchestrator shutting down; logs:\n%s", logs)
	}
}
