package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

const (
	token        = "test-token"
	otherToken   = "other-token"
	cappedToken  = "capped-token"
	workerSecret = "worker-secret"
	fastPoll     = "--poll=5ms"
)

// testServer is a real orchestrator behind a real HTTP server, and the
// environment the command line sees.
type testServer struct {
	o   *orchestrator.Orchestrator
	url string
	// fixed makes the flaky blueprint's handler succeed.
	fixed *atomic.Bool
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	o, err := orchestrator.New(orchestrator.Config{
		Logger: slog.New(slog.DiscardHandler),
		Clients: []orchestrator.Client{
			{Name: "tester", Token: token},
			{Name: "other", Token: otherToken},
			{Name: "capped", Token: cappedToken, MonthlyAttempts: 1},
		},
		GlobalWorkerToken: workerSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	fixed := new(atomic.Bool)
	if err := o.Register(testBlueprints(fixed)...); err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = o.Stop(ctx)
	})
	return &testServer{o: o, url: srv.URL, fixed: fixed}
}

// testBlueprints: review waits for a human decision; quick finishes by
// itself with an analysis summary; doomed ends in a failed end state;
// flaky fails in its start state until fixed; child has no endpoint.
func testBlueprints(fixed *atomic.Bool) []*blueprint.Blueprint {
	review := blueprint.New("review").Endpoint("v1", "/jobs/review")
	review.Start("start", func(c *blueprint.Context) error { return c.GoTo("review") }, blueprint.To("review"))
	review.State("review", func(c *blueprint.Context) error {
		return c.AwaitApproval("please review")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected"))
	review.End("finished", nil)
	review.End("rejected", nil)

	quick := blueprint.New("quick").Endpoint("v1", "/jobs/quick")
	quick.Start("start", func(c *blueprint.Context) error {
		if err := c.Set("analysis_summary", map[string]any{"files": 2, "input": c.Input("path")}); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	quick.End("finished", nil)

	doomed := blueprint.New("doomed").Endpoint("v1", "/jobs/doomed")
	doomed.Start("start", func(c *blueprint.Context) error { return c.GoTo("broken") }, blueprint.To("broken"))
	doomed.End("broken", nil)

	flaky := blueprint.New("flaky").Endpoint("v1", "/jobs/flaky")
	flaky.Start("start", func(c *blueprint.Context) error {
		if !fixed.Load() {
			return fmt.Errorf("%w: the start state is broken", blueprint.ErrMisuse) // fails the job at once
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	flaky.End("finished", nil)

	child := blueprint.New("child")
	child.Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	child.End("finished", nil)
	return []*blueprint.Blueprint{review, quick, doomed, flaky, child}
}

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// env returns the environment of the command: the server's URL and the
// token, plus extra "KEY=VALUE" pairs (an empty value unsets).
func (s *testServer) env(extra ...string) func(string) string {
	m := map[string]string{envURL: s.url, envToken: token}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// cli runs the command line in-process against the server.
func (s *testServer) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t.Context(), s.env(), args...)
}

func runCLI(ctx context.Context, env func(string) string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// background is a run of the command line on another goroutine.
type background struct {
	stdout, stderr testenv.Buffer
	done           chan int
}

// cliAsync starts the command line on another goroutine.
func (s *testServer) cliAsync(ctx context.Context, args ...string) *background {
	b := &background{done: make(chan int, 1)}
	go func() { b.done <- run(ctx, args, &b.stdout, &b.stderr, s.env()) }()
	return b
}

// wait waits for the run to end.
func (b *background) wait() result {
	code := <-b.done
	return result{code: code, stdout: b.stdout.String(), stderr: b.stderr.String()}
}

// waitStdout waits until the run has printed s.
func (b *background) waitStdout(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.stdout.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout never showed %q: %q", s, b.stdout.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// mustCode fails the test unless the run exited with code.
func mustCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
}

// create starts a job through the command line and returns its id.
func (s *testServer) create(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	r := s.cli(t, append([]string{"jobs", "create", endpoint}, args...)...)
	mustCode(t, r, 0)
	return strings.TrimSpace(r.stdout)
}

// waitStatus polls the orchestrator itself until the job has the status.
func (s *testServer) waitStatus(t *testing.T, id string, want protocol.JobStatus) *orchestrator.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := s.o.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, never reached %s", id, j.Status, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// decodeJSON decodes the stdout of a run.
func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r)
	}
	return v
}
