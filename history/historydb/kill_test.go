package historydb_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historydb"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// The child process: records events through a Recorder into the database
// of AVTO_HISTORY_HELPER_URI. Its stdout says what happened:
//
//	ACK <job> <event>    the event is acknowledged (RecordSync or Flush returned)
//	QUEUED <job> <event> Record returned (mode "shutdown" only)
//
// Mode "burst" records from several goroutines until it is killed. Mode
// "shutdown" records without waiting, then Closes the Recorder and exits.
func TestHelperProcessRecorder(t *testing.T) {
	if os.Getenv("AVTO_HISTORY_HELPER") != "1" {
		return
	}
	ctx := context.Background()
	st, err := historydb.Open(ctx, os.Getenv("AVTO_HISTORY_HELPER_URI"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rec := history.NewRecorder(st, history.RecorderOptions{
		Buffer: 256, BatchSize: 64, MaxDelay: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	var outMu sync.Mutex
	say := func(word string, evs ...history.Event) {
		outMu.Lock()
		defer outMu.Unlock()
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintf(&b, "%s %s %s\n", word, e.JobID, e.ID)
		}
		os.Stdout.WriteString(b.String()) // unbuffered: a line is out before the next event
	}
	switch os.Getenv("AVTO_HISTORY_HELPER_MODE") {
	case "burst":
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() { burst(ctx, rec, g, say) })
		}
		wg.Wait() // never: the parent kills this process
		os.Exit(3)
	case "shutdown":
		for i := range 3000 {
			e := helperEvent(fmt.Sprint("job-s-", i/100), i)
			if err := rec.Record(ctx, e); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			say("QUEUED", e)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := rec.Close(cctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
		st.Close()
		os.Exit(0)
	}
	os.Exit(6)
}

// burst records events of one goroutine's jobs forever: every third round
// one RecordSync, the others a few Records and a Flush.
func burst(ctx context.Context, rec *history.Recorder, g int, say func(string, ...history.Event)) {
	deadline := time.Now().Add(60 * time.Second) // in case the parent is gone
	for i := 0; time.Now().Before(deadline); i++ {
		job := fmt.Sprintf("job-%d-%d", g, i/50)
		if i%3 == 0 {
			e := helperEvent(job, i)
			if err := rec.RecordSync(ctx, e); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(7)
			}
			say("ACK", e)
			continue
		}
		var evs []history.Event
		for k := range 1 + i%5 {
			e := helperEvent(job, i*10+k)
			if err := rec.Record(ctx, e); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(7)
			}
			evs = append(evs, e)
		}
		if err := rec.Flush(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(7)
		}
		say("ACK", evs...)
	}
}

func helperEvent(job string, n int) history.Event {
	e := history.Event{Type: history.Progress, JobID: job, Client: "acme", Blueprint: "bp",
		Time: time.Now(), Detail: map[string]any{"n": n, "pad": strings.Repeat("x", n%200)}}
	e.ID = uuid.NewString()
	if n%10 == 0 {
		now := time.Now()
		e.Job = &protocol.Job{ID: job, Client: "acme", Blueprint: "bp", Status: protocol.StatusRunning, UpdatedAt: &now}
	}
	return e
}

type line struct{ word, job, id string }

// child starts the helper in mode against uri and returns it with a channel
// of its stdout lines (closed at EOF).
func child(t *testing.T, mode, uri string) (*exec.Cmd, <-chan line, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessRecorder$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AVTO_HISTORY_HELPER=1", "AVTO_HISTORY_HELPER_MODE="+mode, "AVTO_HISTORY_HELPER_URI="+uri)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan line, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 {
				lines <- line{f[0], f[1], f[2]}
			}
		}
		io.Copy(io.Discard, out)
	}()
	return cmd, lines, stderr
}

// present returns the IDs of the events stored for the jobs named in want.
func present(t *testing.T, uri string, want []line) map[string]bool {
	t.Helper()
	ctx := context.Background()
	st, err := historydb.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs := map[string]bool{}
	for _, l := range want {
		jobs[l.job] = true
	}
	got := map[string]bool{}
	for job := range jobs {
		evs, err := st.JobEvents(ctx, job)
		if err != nil {
			t.Fatalf("events of %s: %v", job, err)
		}
		for _, e := range evs {
			got[e.ID] = true
		}
	}
	return got
}

// backends returns the URIs the process tests run against: an SQLite temp
// file, and a fresh PostgreSQL schema when the test server is configured.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "history.db") },
		"postgres": func(t *testing.T) string {
			url := testenv.URL(t, testenv.PostgresVar)
			return testenv.PostgresSchemaURL(t, url, "avto_history_kill")
		},
	}
}

// Every event acknowledged before a SIGKILL mid-burst is in the database.
func TestKillAfterBurstKeepsAcknowledgedEvents(t *testing.T) {
	t.Parallel()
	for name, uriFor := range backends(t) {
		t.Run(name, func(t *testing.T) {
			uri := uriFor(t)
			cmd, lines, stderr := child(t, "burst", uri)
			var acked []line
			timeout := time.After(30 * time.Second)
			for len(acked) < 3000 {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("child ended before the kill: %v\n%s", cmd.Wait(), stderr)
					}
					acked = append(acked, l)
				case <-timeout:
					t.Fatalf("only %d events acknowledged in 30s\n%s", len(acked), stderr)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for l := range lines { // acknowledged before the kill, still in the pipe
				acked = append(acked, l)
			}
			err := cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr)
			}
			got := present(t, uri, acked)
			missing := 0
			for _, l := range acked {
				if !got[l.id] {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged events are not in the database after SIGKILL", missing, len(acked))
			}
			t.Logf("%s: %d events acknowledged before SIGKILL, all present; %d stored in all (the rest were written but not yet acknowledged)",
				name, len(acked), len(got))
		})
	}
}

// Events recorded (not yet written) when the process shuts down are
// written by Close, not lost.
func TestShutdownFlushesQueuedEvents(t *testing.T) {
	t.Parallel()
	for name, uriFor := range backends(t) {
		t.Run(name, func(t *testing.T) {
			uri := uriFor(t)
			cmd, lines, stderr := child(t, "shutdown", uri)
			var queued []line
			for l := range lines {
				queued = append(queued, l)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, stderr)
			}
			if len(queued) != 3000 {
				t.Fatalf("child queued %d events, want 3000\n%s", len(queued), stderr)
			}
			got := present(t, uri, queued)
			for _, l := range queued {
				if !got[l.id] {
					t.Fatalf("event %s queued before Close is not in the database", l.id)
				}
			}
		})
	}
}
