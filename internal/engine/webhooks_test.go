package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

type fakeNotifier struct {
	mu       sync.Mutex
	calls    []protocol.WebhookPayload
	failures int // answer 503 this many times first
	refuse   bool
}

func (f *fakeNotifier) Deliver(_ context.Context, url string, p protocol.WebhookPayload) (int, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
	if f.refuse {
		return 404, false, errors.New("404")
	}
	if len(f.calls) <= f.failures {
		return 503, true, errors.New("503")
	}
	return 200, false, nil
}

func (f *fakeNotifier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestWebhooks(t *testing.T) {
	bp := blueprint.New("w").Start("start", func(c *blueprint.Context) error {
		if c.Input("fail") == true {
			return c.GoTo("broken")
		}
		_ = c.Set("finished", map[string]any{"ok": true})
		return c.GoTo("finished")
	}, blueprint.To("finished", "broken")).End("finished", nil).End("broken", nil)

	for _, tc := range []struct {
		name     string
		notifier *fakeNotifier
		input    map[string]any
		attempts int
		event    string
		outcome  string
	}{
		{"delivered first time", &fakeNotifier{}, nil, 1, "job_finished", "delivered"},
		{"retried while the receiver is down", &fakeNotifier{failures: 2}, map[string]any{"fail": true}, 3, "job_failed", "delivered"},
		{"bounded attempts", &fakeNotifier{failures: 100}, nil, 3, "job_finished", "gave_up"},
		{"refusal is final", &fakeNotifier{refuse: true}, nil, 1, "job_finished", "gave_up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t, Config{Webhooks: tc.notifier, WebhookAttempts: 3, WebhookBackoff: 20 * time.Millisecond}, bp)
			j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "w", InitialData: tc.input, WebhookURL: "http://receiver/hook"})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(en.eventsOf(EventWebhookAttempt)) < tc.attempts && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(150 * time.Millisecond) // no further attempts may follow
			attempts := en.eventsOf(EventWebhookAttempt)
			if len(attempts) != tc.attempts || tc.notifier.count() != tc.attempts {
				t.Fatalf("%d attempt events, %d deliveries; want %d", len(attempts), tc.notifier.count(), tc.attempts)
			}
			last := attempts[len(attempts)-1].Detail
			if last["outcome"] != tc.outcome || last["attempt"] != tc.attempts {
				t.Fatalf("last attempt %v", last)
			}
			p := tc.notifier.calls[0]
			if p.JobID != j.ID || p.Event != tc.event || p.Blueprint != "w" || !p.Status.Terminal() {
				t.Fatalf("payload %+v", p)
			}
			if tc.event == "job_finished" && p.Result.(map[string]any)["ok"] != true {
				t.Fatalf("result %v", p.Result)
			}
		})
	}
}
