// Package webhook delivers job notifications to the webhook_url of a job:
// one signed JSON POST per attempt. Retrying, backoff and durability belong to
// the engine, which schedules attempts as timers in the store.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Sender posts webhooks.
type Sender struct {
	client  *http.Client
	secret  string
	timeout time.Duration
}

// New returns a sender that signs with secret (none when empty) and gives
// each attempt timeout to complete.
func New(client *http.Client, secret string, timeout time.Duration) *Sender {
	if client == nil {
		client = &http.Client{}
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Sender{client: client, secret: secret, timeout: timeout}
}

// Deliver sends one attempt. It returns the HTTP status (0 when none came
// back) and whether a failure is worth retrying: network errors, timeouts,
// 408, 429 and 5xx are; other 4xx are not.
func (s *Sender) Deliver(ctx context.Context, url string, p protocol.WebhookPayload) (status int, retry bool, err error) {
	body, err := json.Marshal(p)
	if err != nil {
		return 0, false, fmt.Errorf("encode webhook: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "avtomatika-webhook/1")
	if s.secret != "" {
		req.Header.Set(protocol.HeaderWebhookSignature, protocol.SignWebhook(s.secret, time.Now(), body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, true, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, false, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return code, true, fmt.Errorf("webhook receiver answered %d", code)
	default:
		return code, false, fmt.Errorf("webhook receiver refused it with %d", code)
	}
}
