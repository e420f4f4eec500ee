// Package receiver is the showcase's webhook receiver: it accepts job
// notifications on /webhook, checks their signature, and logs each one.
package receiver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Notification is one received webhook.
type Notification struct {
	Payload  protocol.WebhookPayload
	Verified bool // the signature matched the shared secret
}

// Receiver records the notifications it gets.
type Receiver struct {
	secret string
	log    *slog.Logger

	mu   sync.Mutex
	got  []Notification
	wake chan struct{}
}

// New returns a receiver. With a secret, notifications without a valid
// X-Avtomatika-Signature are refused with 401.
func New(secret string, log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.Default()
	}
	return &Receiver{secret: secret, log: log, wake: make(chan struct{})}
}

// Handler serves POST /webhook.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", r.serve)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "OK") })
	return mux
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 10<<20))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	verified := false
	if r.secret != "" {
		if err := protocol.VerifyWebhook(r.secret, req.Header.Get(protocol.HeaderWebhookSignature), body, time.Now(), 5*time.Minute); err != nil {
			r.log.Warn("webhook refused: bad signature", "error", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		verified = true
	}
	var p protocol.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "not a webhook payload", http.StatusBadRequest)
		return
	}
	errText := ""
	if p.Error != nil {
		errText = *p.Error
	}
	result, _ := json.Marshal(p.Result)
	r.log.Info("webhook received", "event", p.Event, "job_id", p.JobID, "status", p.Status,
		"error", errText, "result", string(result), "attempt", p.Attempt, "signature_ok", verified)
	r.mu.Lock()
	r.got = append(r.got, Notification{Payload: p, Verified: verified})
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"received"}`)
}

// Received returns the notifications so far.
func (r *Receiver) Received() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

// Wait returns the first notification about jobID, waiting up to timeout.
func (r *Receiver) Wait(jobID string, timeout time.Duration) (Notification, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for _, n := range r.got {
			if n.Payload.JobID == jobID {
				r.mu.Unlock()
				return n, true
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			return Notification{}, false
		}
	}
}
