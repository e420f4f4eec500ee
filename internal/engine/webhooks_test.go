package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
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
	t.Parallel()
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
		t.Run(tc.name, inBubble(func(t *testing.T) {
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
		}))
	}
}

// firstCall waits for the first webhook delivery.
func (f *fakeNotifier) firstCall(t *testing.T) protocol.WebhookPayload {
	t.Helper()
	return f.call(t, 0)
}

// call waits for the i-th delivery (from 0) and returns it.
func (f *fakeNotifier) call(t *testing.T, i int) protocol.WebhookPayload {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.count() <= i {
		if time.Now().After(deadline) {
			t.Fatalf("%d webhooks delivered, waited for delivery #%d", f.count(), i+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[i]
}

// TestWebhookQuarantined: a job whose handler keeps failing is quarantined
// and its webhook says job_quarantined, with the error.
func TestWebhookQuarantined(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("q").Start("start", func(c *blueprint.Context) error {
		return errors.New("the model server is down")
	}, blueprint.To("finished")).End("finished", nil)
	n := &fakeNotifier{}
	en := newEnv(t, Config{Webhooks: n, MaxRetries: 1}, bp)
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "q", WebhookURL: "http://receiver/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if j = en.waitEnd(j.ID); j.Status != protocol.StatusQuarantined {
		t.Fatalf("job %s", summary(j))
	}
	p := n.firstCall(t)
	if p.Event != protocol.WebhookJobQuarantined || p.JobID != j.ID || p.Status != protocol.StatusQuarantined ||
		p.Error == nil || *p.Error != j.ErrorMessage || !strings.Contains(*p.Error, "the model server is down") {
		t.Fatalf("payload %+v (error %v)", p, deref(p.Error))
	}
}

// TestWebhookCancelled: cancelling a job sends job_cancelled with the
// reason, once.
func TestWebhookCancelled(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("c").Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("wait")
	}, blueprint.On("go", "finished")).End("finished", nil)
	n := &fakeNotifier{}
	en := newEnv(t, Config{Webhooks: n}, bp)
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "c", WebhookURL: "http://receiver/hook"})
	if err != nil {
		t.Fatal(err)
	}
	en.waitStatus(j.ID, protocol.StatusWaitingForHuman)
	// The wait for a human is announced first; cancelling before that
	// delivery would drop it, so wait for it to keep the order fixed.
	if p := n.firstCall(t); p.Event != protocol.WebhookJobWaitingForHuman {
		t.Fatalf("first payload %+v, want %s", p, protocol.WebhookJobWaitingForHuman)
	}
	if _, err := en.e.CancelJob(en.ctx, j.ID, "the client changed its mind"); err != nil {
		t.Fatal(err)
	}
	p := n.call(t, 1)
	if p.Event != protocol.WebhookJobCancelled || p.JobID != j.ID || p.Status != protocol.StatusCancelled ||
		p.Error == nil || *p.Error != "the client changed its mind" {
		t.Fatalf("payload %+v (error %v)", p, deref(p.Error))
	}
	time.Sleep(100 * time.Millisecond)
	if c := n.count(); c != 2 {
		t.Fatalf("%d deliveries, want 2 (the wait for a human, then the cancellation once)", c)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// hangingNotifier never answers until its delivery is cancelled.
type hangingNotifier struct{ started chan struct{} }

func (h *hangingNotifier) Deliver(ctx context.Context, _ string, _ protocol.WebhookPayload) (int, bool, error) {
	h.started <- struct{}{}
	<-ctx.Done()
	return 0, true, ctx.Err()
}

// Receivers that never answer hold every delivery slot; the timer loop
// still fires other timers on time (here a dispatch timeout), because it
// never waits for a free slot.
func TestHangingWebhooksDoNotDelayTimers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testHangingWebhooksDoNotDelayTimers)
}

func testHangingWebhooksDoNotDelayTimers(t *testing.T) {
	quick := blueprint.New("quick").Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") },
		blueprint.To("finished")).End("finished", nil)
	stranded := blueprint.New("stranded").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "nobody", DispatchTimeout: 100 * time.Millisecond})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed")).End("finished", nil).End("failed", nil)
	hang := &hangingNotifier{started: make(chan struct{}, 16)}
	en := newEnv(t, Config{Webhooks: hang, WebhookParallel: 2}, quick, stranded)
	for range 5 {
		if _, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "quick", WebhookURL: "http://receiver/hook"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-hang.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the webhook deliveries did not start")
		}
	}
	// Both slots hang; three more deliveries keep coming due.
	j := en.create("stranded", nil)
	end := en.waitEnd(j.ID)
	if end.Status != protocol.StatusFailed || end.CurrentState != "failed" {
		t.Fatalf("stranded job: %s", summary(end))
	}
	if n := len(hang.started); n != 0 {
		t.Fatalf("%d deliveries started beyond the 2 slots", n)
	}
}

// A notification is retried with delays doubling up to WebhookBackoffMax
// for WebhookWindow after the job ended, not for a fixed handful of
// attempts: a receiver down for longer than the first few backoffs still
// gets it.
func TestWebhookRetriesForTheWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testWebhookRetriesForTheWindow)
}

func testWebhookRetriesForTheWindow(t *testing.T) {
	bp := blueprint.New("w").Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") },
		blueprint.To("finished")).End("finished", nil)
	down := &fakeNotifier{failures: 12}
	en := newEnv(t, Config{Webhooks: down, WebhookBackoff: 5 * time.Millisecond, WebhookBackoffMax: 20 * time.Millisecond,
		WebhookWindow: time.Minute}, bp)
	if _, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "w", WebhookURL: "http://receiver/hook"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for down.count() < 13 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The 13th delivery has been made; its attempt event follows once the
	// delivery returns: let the bubble's goroutines run until they block.
	synctest.Wait()
	attempts := en.eventsOf(EventWebhookAttempt)
	if down.count() != 13 || len(attempts) != 13 || attempts[12].Detail["outcome"] != "delivered" {
		t.Fatalf("%d deliveries, %d attempt events; want the 13th delivered", down.count(), len(attempts))
	}
	// The delays double, then stay at the cap.
	e := en.e
	if e.webhookDelay(1) != 5*time.Millisecond || e.webhookDelay(2) != 10*time.Millisecond || e.webhookDelay(3) != 20*time.Millisecond ||
		e.webhookDelay(200) != 20*time.Millisecond {
		t.Fatalf("delays %v %v %v %v", e.webhookDelay(1), e.webhookDelay(2), e.webhookDelay(3), e.webhookDelay(200))
	}
}

// Past the window, attempts stop although the receiver still fails.
func TestWebhookGivesUpAfterTheWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testWebhookGivesUpAfterTheWindow)
}

func testWebhookGivesUpAfterTheWindow(t *testing.T) {
	bp := blueprint.New("w").Start("start", func(c *blueprint.Context) error { return c.GoTo("finished") },
		blueprint.To("finished")).End("finished", nil)
	down := &fakeNotifier{failures: 1000}
	en := newEnv(t, Config{Webhooks: down, WebhookBackoff: 10 * time.Millisecond, WebhookBackoffMax: 10 * time.Millisecond,
		WebhookWindow: 100 * time.Millisecond}, bp)
	if _, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "w", WebhookURL: "http://receiver/hook"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	attempts := en.eventsOf(EventWebhookAttempt)
	if n := len(attempts); n < 3 || n > 15 || attempts[n-1].Detail["outcome"] != "gave_up" {
		t.Fatalf("%d attempts, last %v; want a few, the last giving up", n, attempts[len(attempts)-1].Detail)
	}
}

// A job that starts waiting for a human announces its approval URL
// (job_waiting_for_human) to its webhook, and the token in it decides once;
// the end's webhook follows.
func TestWebhookAnnouncesApproval(t *testing.T) {
	t.Parallel()
	bp := blueprint.New("a").Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("Ship it?")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "finished")).End("finished", nil)
	n := &fakeNotifier{}
	en := newEnv(t, Config{Webhooks: n, PublicURL: "https://orch.example/"}, bp)
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "a", WebhookURL: "http://receiver/hook"})
	if err != nil {
		t.Fatal(err)
	}
	p := n.firstCall(t)
	prefix := "https://orch.example/_public/webhooks/approval/" + j.ID + "?token="
	if p.Event != protocol.WebhookJobWaitingForHuman || p.Status != protocol.StatusWaitingForHuman || p.Approval == nil ||
		!strings.HasPrefix(p.Approval.URL, prefix) || p.Approval.Message != "Ship it?" || len(p.Approval.Decisions) != 2 || p.Approval.ExpiresAt == nil {
		t.Fatalf("payload %+v, approval %+v", p, p.Approval)
	}
	token := strings.TrimPrefix(p.Approval.URL, prefix)
	if _, err := en.e.ApproveWithToken(en.ctx, j.ID, "wrong", "approved"); !errors.Is(err, ErrApprovalToken) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := en.e.ApproveWithToken(en.ctx, j.ID, token, "approved"); err != nil {
		t.Fatal(err)
	}
	if _, err := en.e.ApproveWithToken(en.ctx, j.ID, token, "rejected"); !errors.Is(err, ErrApprovalToken) {
		t.Fatalf("spent token: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.calls) != 2 || n.calls[1].Event != protocol.WebhookJobFinished || n.calls[1].Approval != nil {
		t.Fatalf("deliveries %+v", n.calls)
	}
}

// gateNotifier holds each delivery until the test answers it.
type gateNotifier struct {
	calls  chan protocol.WebhookPayload
	answer chan error
}

func (g *gateNotifier) Deliver(ctx context.Context, _ string, p protocol.WebhookPayload) (int, bool, error) {
	g.calls <- p
	select {
	case err := <-g.answer:
		if err != nil {
			return 503, true, err
		}
		return 200, false, nil
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

// TestWebhookChainEndsWithRetry: a retry of the job while its failure is
// being announced cancels that announcement's chain: the attempt in flight
// fails, and is not retried (outcome superseded); the job's next end is
// announced from attempt 1.
func TestWebhookChainEndsWithRetry(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	g := &gateNotifier{calls: make(chan protocol.WebhookPayload), answer: make(chan error)}
	en := newEnv(t, Config{Webhooks: g, WebhookAttempts: 3}, dispatchBP("d", "success", "finished", "failure", "failed_state"))
	en.start(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}, handle: func(p *protocol.TaskPayload) protocol.TaskResult {
		if !healthy.Load() {
			return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrPermanent, Message: "bad codec"}}
		}
		return protocol.TaskResult{Status: protocol.TaskSuccess}
	}})
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "d", WebhookURL: "http://receiver/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if p := <-g.calls; p.Event != protocol.WebhookJobFailed || p.Attempt != 1 {
		t.Fatalf("first delivery %+v", p)
	}
	healthy.Store(true)
	if _, err := en.e.RetryJob(en.ctx, j.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	g.answer <- errors.New("503") // the failure's attempt 1 fails after the retry
	// The next delivery announces the retried job's end, from attempt 1.
	select {
	case p := <-g.calls:
		if p.Event != protocol.WebhookJobFinished || p.Attempt != 1 {
			t.Fatalf("after the retry: %+v, want job_finished attempt 1", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retried job's end was not announced")
	}
	g.answer <- nil
	en.wait(j.ID, "the superseded attempt recorded", func(*store.Job) bool {
		for _, ev := range en.eventsOf(EventWebhookAttempt) {
			if ev.Detail["outcome"] == "superseded" {
				return true
			}
		}
		return false
	})
	select {
	case p := <-g.calls:
		t.Fatalf("another delivery after the retry's: %+v", p)
	case <-time.After(300 * time.Millisecond):
	}
}

// The webhook timers of two ends of one job (a retry revived it between
// them) never share a key, so an attempt of the first end's chain that
// finishes late deletes its own timer, not the second end's first one
// (which left the second end unannounced, now and then, in
// TestWebhookChainEndsWithRetry).
func TestEndNoticesOfTwoEndsDiffer(t *testing.T) {
	t.Parallel()
	first, second := time.Now(), time.Now().Add(time.Millisecond)
	a := endNotice(&store.Job{ID: "j", FinishedAt: &first}, 1, first)
	b := endNotice(&store.Job{ID: "j", FinishedAt: &second}, 1, second)
	if a.Key() == b.Key() {
		t.Fatalf("both ends' first attempts have the key %s", a.Key())
	}
}
