package orchestrator_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// The live store loses its data (here: an orchestrator on the memory store
// restarts; with Redis, a restart without persistence): once the old live
// store has not been seen for the stale time, the jobs history shows
// unfinished in it are ended as failed, saying why, and their webhook is
// sent, instead of being forgotten silently.
func TestLostLiveStateIsReported(t *testing.T) {
	t.Parallel()
	uri := "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	hook := newHookReceiver(t, 0)
	logs := &testenv.Buffer{}
	cfg := func(logs *testenv.Buffer) orchestrator.Config {
		return orchestrator.WithLiveStateTiming(orchestrator.Config{
			Logger: slog.New(slog.NewTextHandler(logs, nil)), GlobalWorkerToken: "tok", HistoryURI: uri, Store: memory.New(memory.Options{}),
			Clients:             []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
			WebhookAllowedHosts: []string{"127.0.0.1/32"},
		}, 100*time.Millisecond, time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first, err := orchestrator.New(cfg(&testenv.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Register(taskBlueprints()...); err != nil {
		t.Fatal(err)
	}
	base := serveForTest(t, first)
	c, _ := client.New(base, "acme-token")
	// No worker: the job waits for one when the store goes.
	id, err := c.CreateJob(ctx, "/jobs/flaky", nil, client.WithWebhook(hook.url))
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, c, id, protocol.StatusWaitingForWorker)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	_, base = serveOrchestrator(t, cfg(logs), taskBlueprints()...)
	c, _ = client.New(base, "acme-token")
	j := waitForStatus(t, c, id, protocol.StatusFailed)
	if !strings.Contains(j.ErrorMessage, "live state of this job was lost") {
		t.Fatalf("error_message %q", j.ErrorMessage)
	}
	// The summary is logged once every lost job is ended, which may come
	// after this job shows failed.
	testenv.WaitUntil(t, "the ERROR log about the loss", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "the live store lost its data")
	})
	testenv.WaitUntil(t, "the webhook of the lost job", 10*time.Second, func() bool {
		for _, p := range hook.received() {
			if p.JobID == id && p.Status == protocol.StatusFailed {
				return true
			}
		}
		return false
	})
	events, err := c.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ended := false
	for _, e := range events {
		ended = ended || e.EventType == "job_ended"
	}
	if !ended {
		t.Fatalf("no job_ended in the history: %+v", events)
	}
}

// Two orchestrators with their own (memory) live stores share one history
// database, as the showcase run twice in one folder does: neither fails
// the other's unfinished jobs while the other runs, and the jobs of the
// one that stops without finishing them are ended as failed by the other
// once its live store has not been seen for the stale time.
func TestSharedHistoryOtherLiveStore(t *testing.T) {
	t.Parallel()
	uri := "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	const check, stale = 100 * time.Millisecond, time.Second
	cfg := func(logs *testenv.Buffer) orchestrator.Config {
		return orchestrator.WithLiveStateTiming(orchestrator.Config{
			Logger: slog.New(slog.NewTextHandler(logs, nil)), GlobalWorkerToken: "tok", HistoryURI: uri, Store: memory.New(memory.Options{}),
			Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
		}, check, stale)
	}
	bps := append(taskBlueprints(), taskBlueprint("waiting", blueprint.Task{Type: "nobody"}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first, baseA := serveOrchestrator(t, cfg(&testenv.Buffer{}), bps...)
	a, _ := client.New(baseA, "acme-token")
	keep, err := a.CreateJob(ctx, "/jobs/flaky", nil) // no worker yet: it waits
	if err != nil {
		t.Fatal(err)
	}
	gone, err := a.CreateJob(ctx, "/jobs/waiting", nil) // no worker ever
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{keep, gone} {
		waitForStatus(t, a, id, protocol.StatusWaitingForWorker)
		testenv.WaitUntil(t, "job "+id+" in history", 10*time.Second, func() bool {
			events, err := a.History(ctx, id)
			return err == nil && len(events) > 0
		})
	}

	logsB := &testenv.Buffer{}
	_, baseB := serveOrchestrator(t, cfg(logsB), bps...)
	b, _ := client.New(baseB, "acme-token")
	// Several stale times of B's checks while A runs: A's jobs stay.
	time.Sleep(3 * stale)
	for _, id := range []string{keep, gone} {
		j, err := b.Job(ctx, id) // from history: B's store never had it
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != protocol.StatusWaitingForWorker {
			t.Fatalf("job %s of the running orchestrator is %s in history (%q), want waiting_for_worker", id, j.Status, j.ErrorMessage)
		}
	}
	if strings.Contains(logsB.String(), "job lost") {
		t.Fatalf("B reported a running orchestrator's job lost:\n%s", logsB)
	}
	startTaskWorker(t, baseA, "w-a", a)
	waitForStatus(t, a, keep, protocol.StatusFinished)

	// A stops with its waiting job: B ends it once A's store is stale.
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the stopped orchestrator's job to be failed", 10*time.Second, func() bool {
		j, err := b.Job(ctx, gone)
		return err == nil && j.Status == protocol.StatusFailed && strings.Contains(j.ErrorMessage, "live state of this job was lost")
	})
	if j, err := b.Job(ctx, keep); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("finished job after A stopped: %+v, %v", j, err)
	}
}

// An orchestrator process on the memory store is killed (SIGKILL) with an
// unfinished job; another orchestrator on the same SQLite history leaves
// the job alone while the process runs and ends it as failed once the dead
// process's live store is stale.
func TestKilledOrchestratorsJobsFail(t *testing.T) {
	t.Parallel()
	uri := "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	const check, stale = 100 * time.Millisecond, time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := loopbackAddr(t)
	dead := startHelper(t, addr, "", "", "HISTORY_DATABASE_URI="+uri, "AVTO_HELPER_LIVE_CHECK="+check.String())
	a, _ := client.New("http://"+addr, "ct")
	id, err := a.CreateJob(ctx, "/jobs/late", nil) // waits for a skill no worker has
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, a, id, protocol.StatusWaitingForWorker)
	testenv.WaitUntil(t, "the job in history", 10*time.Second, func() bool {
		events, err := a.History(ctx, id)
		return err == nil && len(events) > 0
	})

	_, base := serveOrchestrator(t, orchestrator.WithLiveStateTiming(orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", HistoryURI: uri, Store: memory.New(memory.Options{}),
		Clients: []orchestrator.Client{{Name: "c", Token: "ct"}},
	}, check, stale), flowBlueprints()...)
	b, _ := client.New(base, "ct")
	time.Sleep(2 * stale) // checks of b while the process runs
	if j, err := b.Job(ctx, id); err != nil || j.Status != protocol.StatusWaitingForWorker {
		t.Fatalf("the running process's job, from history: %+v, %v", j, err)
	}

	dead.kill()
	testenv.WaitUntil(t, "the killed process's job to be failed", 10*time.Second, func() bool {
		j, err := b.Job(ctx, id)
		return err == nil && j.Status == protocol.StatusFailed && strings.Contains(j.ErrorMessage, "live state of this job was lost")
	})
}
