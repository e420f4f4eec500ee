package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// A job's end notification survives an orchestrator's death: the job
// finishes while its webhook receiver is down, the orchestrator process is
// killed (SIGKILL) after a failed attempt, and a new orchestrator on the
// same Redis delivers the notification once the receiver is back. The
// attempts are timers in the live store, not goroutines of the process.
func TestWebhookSurvivesOrchestratorKill(t *testing.T) {
	redisURL, prefix := redisForTest(t)
	historyURI := "sqlite:" + filepath.Join(t.TempDir(), "history.db")
	hookAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	hookURL := "http://" + hookAddr + "/hook"
	env := []string{"HISTORY_DATABASE_URI=" + historyURI, "AVTO_HELPER_WEBHOOK_ALLOWED_HOSTS=127.0.0.1/32"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr := loopbackAddr(t)
	first := startHelper(t, addr, redisURL, prefix, env...)
	workerCtx, stopWorker := context.WithCancel(ctx)
	startFlowWorker(t, workerCtx, "w-rare", "http://"+addr, newExecutions(), "rare")
	c, _ := client.New("http://"+addr, "ct")
	id, err := c.CreateJob(ctx, "/jobs/late", nil, client.WithWebhook(hookURL))
	if err != nil {
		t.Fatal(err)
	}
	if j := waitForStatus(t, c, id, protocol.StatusFinished); j == nil {
		t.Fatal("no job")
	}
	// The receiver is down (nothing listens on its port): the first
	// attempt fails and a retry is scheduled.
	testenv.WaitUntil(t, "a failed webhook attempt with a retry scheduled", 30*time.Second, func() bool {
		events, err := c.History(ctx, id)
		if err != nil {
			return false
		}
		for _, e := range events {
			if d, _ := e.Fields["detail"].(map[string]any); e.EventType == "webhook_attempt" && d["outcome"] == "retrying" {
				return true
			}
		}
		return false
	})
	first.kill()
	stopWorker()

	// The receiver comes back, and so does an orchestrator.
	hook := startReceiverOn(t, hookAddr)
	startHelper(t, addr, redisURL, prefix, env...)
	testenv.WaitUntil(t, "the webhook after the restart", 60*time.Second, func() bool {
		for _, p := range hook.received() {
			if p.JobID == id {
				return true
			}
		}
		return false
	})
	p := hook.received()[0]
	if p.JobID != id || p.Status != protocol.StatusFinished || p.Event != "job_finished" || p.Attempt < 2 {
		t.Fatalf("delivered %+v, want job %s finished, attempt 2 or later", p, id)
	}
}

// receiver records the webhooks it is sent.
type receiver struct {
	mu  sync.Mutex
	got []protocol.WebhookPayload
}

func (r *receiver) received() []protocol.WebhookPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.WebhookPayload(nil), r.got...)
}

// startReceiverOn serves a webhook receiver on addr until the test ends.
func startReceiverOn(t *testing.T, addr string) *receiver {
	t.Helper()
	rc := &receiver{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p protocol.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, p)
		rc.mu.Unlock()
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("receiver: %v", err)
		}
	})
	return rc
}
