package orchestrator_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// The live store loses its data (here: an orchestrator on the memory store
// restarts; with Redis, a restart without persistence): the jobs history
// shows unfinished are ended as failed, saying why, and their webhook is
// sent, instead of being forgotten silently.
func TestLostLiveStateIsReported(t *testing.T) {
	t.Parallel()
	uri := "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	hook := newHookReceiver(t, 0)
	logs := &testenv.Buffer{}
	cfg := func(logs *testenv.Buffer) orchestrator.Config {
		return orchestrator.Config{
			Logger: slog.New(slog.NewTextHandler(logs, nil)), GlobalWorkerToken: "tok", HistoryURI: uri, Store: memory.New(memory.Options{}),
			Clients:             []orchestrator.Client{{Name: "acme", Token: "acme-token"}},
			WebhookAllowedHosts: []string{"127.0.0.1/32"},
		}
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
	waitUntilT(t, "the ERROR log about the loss", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "the live store lost its data")
	})
	waitUntilT(t, "the webhook of the lost job", 10*time.Second, func() bool {
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
