package watch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/internal/watch"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

const (
	clientName  = "tester"
	clientToken = "test-token"
	poll        = 5 * time.Millisecond
)

// server is a real orchestrator behind a real HTTP server.
type server struct {
	o *orchestrator.Orchestrator
	c *client.Client
}

func newServer(t *testing.T) *server {
	t.Helper()
	o, err := orchestrator.New(orchestrator.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Clients: []orchestrator.Client{{Name: clientName, Token: clientToken}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(blueprints()...); err != nil {
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
	c, err := client.New(srv.URL, clientToken)
	if err != nil {
		t.Fatal(err)
	}
	return &server{o: o, c: c}
}

func blueprints() []*blueprint.Blueprint {
	review := blueprint.New("review").Endpoint("v1", "/jobs/review")
	review.Start("start", func(c *blueprint.Context) error { return c.GoTo("review") }, blueprint.To("review"))
	review.State("review", func(c *blueprint.Context) error {
		return c.AwaitApproval("please\nreview\x1b[31m")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected"))
	review.End("finished", nil)
	review.End("rejected", nil)

	quick := blueprint.New("quick").Endpoint("v1", "/jobs/quick")
	quick.Start("start", func(c *blueprint.Context) error {
		if err := c.Set("analysis_summary", map[string]any{"files": 3, "verdict": "clean"}); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	quick.End("finished", nil)

	doomed := blueprint.New("doomed").Endpoint("v1", "/jobs/doomed")
	doomed.Start("start", func(c *blueprint.Context) error { return c.GoTo("broken") }, blueprint.To("broken"))
	doomed.End("broken", nil)
	return []*blueprint.Blueprint{review, quick, doomed}
}

func (s *server) create(t *testing.T, endpoint string) string {
	t.Helper()
	id, err := s.c.CreateJob(t.Context(), endpoint, map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitStatus polls the orchestrator itself until the job has the status.
func (s *server) waitStatus(t *testing.T, id string, want protocol.JobStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j, err := s.o.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("job %s never reached %s", id, want)
}

type result struct {
	job *protocol.Job
	err error
}

// waitOutput waits until the output contains s.
func waitOutput(t *testing.T, out *testenv.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %q: %q", s, out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func watchAsync(ctx context.Context, s *server, id string, out *testenv.Buffer, opts ...watch.Option) <-chan result {
	done := make(chan result, 1)
	go func() {
		j, err := watch.Job(ctx, s.c, id, out, opts...)
		done <- result{j, err}
	}()
	return done
}

func TestPlainLinesOnlyOnChange(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/review")
	var out testenv.Buffer
	done := watchAsync(t.Context(), s, id, &out, watch.PollEvery(poll))

	waitOutput(t, &out, "WAITING_FOR_HUMAN")
	time.Sleep(30 * poll) // many polls that see no change
	if err := s.o.Approve(t.Context(), id, "approved"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.job.Status != protocol.StatusFinished || r.job.ID != id {
		t.Fatalf("final job = %+v", r.job)
	}

	text := out.String()
	if strings.Contains(text, "\r") {
		t.Errorf("plain output has carriage returns: %q", text)
	}
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("output does not end with a newline: %q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	waiting := "  0% WAITING_FOR_HUMAN [review] please review [31m"
	if n := count(lines, waiting); n != 1 {
		t.Errorf("line %q printed %d times, want once:\n%s", waiting, n, text)
	}
	if last, want := lines[len(lines)-1], "100% FINISHED"; last != want { // an ended job's progress message is empty
		t.Errorf("last line = %q, want %q", last, want)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			t.Errorf("line %d repeats the previous one: %q", i, lines[i])
		}
	}
	if strings.ContainsRune(text, 0x1b) {
		t.Errorf("the server's escape sequence reached the output: %q", text)
	}
}

func TestPlainFailedJob(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/doomed")
	var out bytes.Buffer
	j, err := watch.Job(t.Context(), s.c, id, &out, watch.PollEvery(poll))
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != protocol.StatusFailed {
		t.Fatalf("status = %s, want failed", j.Status)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "  0% FAILED [broken]" {
		t.Errorf("last line = %q", last)
	}
}

func TestTerminalBar(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/review")
	var out testenv.Buffer
	done := watchAsync(t.Context(), s, id, &out, watch.PollEvery(poll), watch.Terminal(true), watch.Width(120))
	waitOutput(t, &out, "WAITING_FOR_HUMAN")
	if err := s.o.Approve(t.Context(), id, "rejected"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.job.Status != protocol.StatusFailed {
		t.Fatalf("status = %s, want failed", r.job.Status)
	}
	text := out.String()
	if !strings.Contains(text, "\r") {
		t.Errorf("no carriage-return redraw in %q", text)
	}
	if !strings.HasSuffix(text, "\n") || strings.Count(text, "\n") != 1 {
		t.Errorf("want exactly one newline, at the end: %q", text)
	}
	emptyBar := "|" + strings.Repeat(" ", watch.BarCells) + "|"
	if !strings.Contains(text, "0% "+emptyBar+"  WAITING_FOR_HUMAN [review] please review [31m") {
		t.Errorf("no waiting line with an empty %d-cell bar in %q", watch.BarCells, text)
	}
	final := text[strings.LastIndex(text, "\r")+1:]
	if !strings.Contains(final, "FAILED [rejected]") {
		t.Errorf("final redraw = %q", final)
	}
}

func TestTerminalBarFull(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/quick")
	var out bytes.Buffer
	j, err := watch.Job(t.Context(), s.c, id, &out, watch.PollEvery(poll), watch.Terminal(true), watch.Width(60))
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != protocol.StatusFinished {
		t.Fatalf("status = %s", j.Status)
	}
	full := "100% |" + strings.Repeat("█", watch.BarCells) + "|  FINISHED"
	if text := out.String(); !strings.Contains(text, full) {
		t.Errorf("no full bar %q in %q", full, text)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var out bytes.Buffer
	_, err := watch.Job(t.Context(), s.c, "no-such-job", &out, watch.PollEvery(poll), watch.Terminal(true))
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if out.Len() != 0 {
		t.Errorf("output for an unknown job: %q", out.String())
	}
}

func TestContextEndsLine(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, protocol.StatusWaitingForHuman)
	ctx, cancel := context.WithTimeout(t.Context(), 20*poll)
	defer cancel()
	var out bytes.Buffer
	const width = 80
	_, err := watch.Job(ctx, s.c, id, &out, watch.PollEvery(poll), watch.Terminal(true), watch.Width(width))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	text := out.String()
	if !strings.HasSuffix(text, "\n") || !strings.Contains(text, "WAITING_FOR_HUMAN") {
		t.Errorf("interrupted bar not ended with a newline: %q", text)
	}
	// Each redraw erases the rest of the line, and the message loses its
	// middle so that the line fits the terminal; the status and the state
	// stay whole.
	line, ok := strings.CutSuffix(text[strings.LastIndex(text, "\r")+1:], "\x1b[K\n")
	if !ok {
		t.Fatalf("the last redraw does not erase to the end of the line: %q", text)
	}
	if n := utf8.RuneCountInString(line); n >= width || !strings.Contains(line, "|  WAITING_FOR_HUMAN [review] pl") ||
		!strings.Contains(line, "…") || !strings.HasSuffix(line, "[31m") {
		t.Errorf("line of %d columns on a %d-column terminal: %q", n, width, line)
	}
}

// A hint shows once per change, on its own line, with the progress.
func TestHint(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/review")
	hint := func(j *protocol.Job) string {
		if j.Status != protocol.StatusWaitingForHuman || j.Approval == nil {
			return ""
		}
		return "decide with: approve " + j.ID + " " + strings.Join(j.Approval.Decisions, "|") + "\x1b[31m"
	}
	want := "decide with: approve " + id + " approved|rejected [31m"
	var plain, term testenv.Buffer
	plainDone := watchAsync(t.Context(), s, id, &plain, watch.PollEvery(poll), watch.Terminal(false), watch.Hint(hint))
	termDone := watchAsync(t.Context(), s, id, &term, watch.PollEvery(poll), watch.Terminal(true), watch.Width(100), watch.Hint(hint))
	waitOutput(t, &plain, want)
	waitOutput(t, &term, want)
	time.Sleep(20 * poll) // polls that see no change print nothing
	if err := s.o.Approve(t.Context(), id, "approved"); err != nil {
		t.Fatal(err)
	}
	for _, done := range []<-chan result{plainDone, termDone} {
		if r := <-done; r.err != nil {
			t.Fatal(r.err)
		}
	}

	text := plain.String()
	if n := strings.Count(text, "decide with"); n != 1 || !strings.Contains(text, "] please review [31m\n"+want+"\n") {
		t.Errorf("plain: hint not printed once after its line: %q", text)
	}
	if strings.ContainsRune(text, 0x1b) {
		t.Errorf("plain: escape in %q", text)
	}
	text = term.String()
	if n := strings.Count(text, "decide with"); n != 1 || !strings.HasPrefix(text, "\r"+want+"\x1b[K\n\r   0% |") {
		t.Errorf("terminal: hint not printed once above the bar: %q", text)
	}
	if !strings.HasSuffix(text, "|  FINISHED\x1b[K\n") {
		t.Errorf("terminal: final line: %q", text)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/quick")
	j, err := watch.Job(t.Context(), s.c, id, nil, watch.PollEvery(poll))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := watch.Summary(&out, j); err != nil {
		t.Fatal(err)
	}
	want := "Job " + id + ": FINISHED\nAnalysis summary:\n{\n  \"files\": 3,\n  \"verdict\": \"clean\"\n}\n"
	if out.String() != want {
		t.Errorf("summary =\n%s\nwant\n%s", out.String(), want)
	}
}

func TestSummaryVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		job  protocol.Job
		want string
	}{
		{"error and result", protocol.Job{ID: "j", Status: protocol.StatusQuarantined, ErrorMessage: "boom", Result: "partial"},
			"Job j: QUARANTINED\nError: boom\nResult: partial\n"},
		{"scalar result", protocol.Job{ID: "j", Status: protocol.StatusFinished, Result: 42.0},
			"Job j: FINISHED\nResult: 42\n"},
		{"summary wins over result", protocol.Job{ID: "j", Status: protocol.StatusFinished,
			StateHistory: map[string]any{"analysis_summary": "all good"}, Result: []any{1.0}},
			"Job j: FINISHED\nAnalysis summary: all good\n"},
		{"nothing else", protocol.Job{ID: "j", Status: protocol.StatusCancelled}, "Job j: CANCELLED\n"},
		{"empty result", protocol.Job{ID: "j", Status: protocol.StatusFinished, Result: map[string]any{}}, "Job j: FINISHED\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := watch.Summary(&out, &tt.job); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		job  protocol.Job
		want string
	}{
		{protocol.Job{Status: protocol.StatusRunning, CurrentState: "transcode", ProgressMessage: "task running on gpu-1"},
			"RUNNING [transcode] task running on gpu-1"},
		{protocol.Job{Status: protocol.StatusFinished, CurrentState: "finished", ProgressMessage: "done"}, "FINISHED done"},
		{protocol.Job{Status: protocol.StatusFailed, CurrentState: "x", ProgressMessage: "p", ErrorMessage: "bad\tthing"},
			"FAILED [x] error: bad thing"},
		{protocol.Job{}, "UNKNOWN"},
	}
	for _, tt := range tests {
		if got := watch.Describe(&tt.job); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.job, got, tt.want)
		}
	}
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteErrorStopsWatching(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.create(t, "/jobs/review") // waits for a decision that never comes
	for _, terminal := range []bool{false, true} {
		_, err := watch.Job(t.Context(), s.c, id, failingWriter{}, watch.PollEvery(poll), watch.Terminal(terminal))
		if err == nil || !strings.Contains(err.Error(), "write progress: broken pipe") {
			t.Errorf("terminal=%v: err = %v", terminal, err)
		}
	}
}
