package protocol

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook events, sent when a job created with a webhook_url ends, and
// when it starts waiting for a human decision (WebhookJobWaitingForHuman,
// with the approval URL).
const (
	WebhookJobFinished        = "job_finished"
	WebhookJobFailed          = "job_failed"
	WebhookJobQuarantined     = "job_quarantined"
	WebhookJobCancelled       = "job_cancelled"
	WebhookJobWaitingForHuman = "job_waiting_for_human"
)

// ApprovalURL is the URL that decides a job's pending approval with its
// single-use token, without the client token: base (the orchestrator's
// public URL; "" gives a path) + /_public/webhooks/approval/{job_id}?token=.
func ApprovalURL(base, jobID, token string) string {
	return strings.TrimSuffix(base, "/") + strings.Replace(PublicApprovalPattern, "{job_id}", url.PathEscape(jobID), 1) +
		"?token=" + url.QueryEscape(token)
}

// WebhookEvent names the event for a terminal job status.
func WebhookEvent(s JobStatus) string {
	switch s {
	case StatusFinished:
		return WebhookJobFinished
	case StatusQuarantined:
		return WebhookJobQuarantined
	case StatusCancelled:
		return WebhookJobCancelled
	}
	return WebhookJobFailed
}

// WebhookPayload is the JSON body POSTed to a job's webhook_url.
type WebhookPayload struct {
	Event     string    `json:"event"`
	JobID     string    `json:"job_id"`
	Blueprint string    `json:"blueprint_name"`
	Status    JobStatus `json:"status"`
	Result    any       `json:"result"`
	Error     *string   `json:"error"`
	Timestamp int64     `json:"timestamp"` // when this attempt was sent (Unix seconds)
	Attempt   int       `json:"attempt"`
	// Approval is the pending decision of a job_waiting_for_human event,
	// with its URL.
	Approval *ApprovalInfo `json:"approval,omitempty"`
}

// HeaderWebhookSignature carries a webhook's signature:
//
//	X-Avtomatika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC key is the orchestrator's webhook secret and the message is
// "<t>.<raw request body>". Receivers should recompute it, compare in
// constant time and reject timestamps older than a few minutes.
const HeaderWebhookSignature = "X-Avtomatika-Signature"

// SignWebhook returns the X-Avtomatika-Signature value for body sent at t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + SignBytes(append([]byte(ts+"."), body...), secret)
}

// Webhook signature errors.
var (
	ErrWebhookSignature = errors.New("invalid webhook signature")
	ErrWebhookStale     = errors.New("webhook timestamp outside the tolerance")
)

// VerifyWebhook checks an X-Avtomatika-Signature header against body,
// accepting timestamps within tolerance of now.
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: malformed header", ErrWebhookSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrWebhookStale
	}
	want := SignBytes(append([]byte(ts+"."), body...), secret)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return ErrWebhookSignature
	}
	return nil
}
