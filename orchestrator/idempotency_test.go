package orchestrator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// A create repeated with the same Idempotency-Key answers with the first
// job, creates nothing and is not charged again; keys are per client.
func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	_, base := serveOrchestrator(t, orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", Store: memory.New(memory.Options{}), HistoryURI: "none",
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token", MonthlyAttempts: 2}, {Name: "other", Token: "other-token"}},
	}, taskBlueprints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := client.New(base, "acme-token")
	first, err := c.CreateJob(ctx, "/jobs/stranded", nil, client.WithIdempotencyKey("order-42"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := c.CreateJob(ctx, "/jobs/stranded", nil, client.WithIdempotencyKey("order-42"))
		if err != nil || again != first {
			t.Fatalf("a repeat: %q %v, want %q", again, err, first)
		}
	}
	// The raw answer says it is a replay.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/jobs/stranded", strings.NewReader(`{}`))
	req.Header.Set(protocol.HeaderClientToken, "acme-token")
	req.Header.Set(protocol.HeaderIdempotencyKey, "order-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get(protocol.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("a raw repeat: %d, replayed %q", resp.StatusCode, resp.Header.Get(protocol.HeaderIdempotentReplayed))
	}
	page, err := c.Jobs(ctx, client.ListOptions{})
	if err != nil || len(page.Jobs) != 1 {
		t.Fatalf("jobs after repeats: %+v %v", page, err)
	}
	// Charged once: one more job fits the quota of two, then no more.
	if _, err := c.CreateJob(ctx, "/jobs/stranded", nil); err != nil {
		t.Fatalf("the second charge: %v", err)
	}
	if _, err := c.CreateJob(ctx, "/jobs/stranded", nil, client.WithIdempotencyKey("order-43")); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("past the quota: %v", err)
	}
	// Keys belong to their client.
	o, _ := client.New(base, "other-token")
	theirs, err := o.CreateJob(ctx, "/jobs/stranded", nil, client.WithIdempotencyKey("order-42"))
	if err != nil || theirs == first {
		t.Fatalf("another client's key: %q %v", theirs, err)
	}
	// An absurd key is refused.
	if _, err := c.CreateJob(ctx, "/jobs/stranded", nil, client.WithIdempotencyKey(strings.Repeat("k", 300))); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("a 300-character key: %v", err)
	}
}
