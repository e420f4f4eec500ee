package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Wait defaults.
const (
	DefaultPollInterval = time.Second
	DefaultMaxRetries   = 5
)

const (
	// maxBackoff caps the delay between polls after transient errors (unless
	// the poll interval itself is longer).
	maxBackoff = 10 * time.Second
	// maxRetryAfter is the longest Retry-After that Wait honours; a longer
	// one (an exhausted monthly quota, say) ends Wait with the error.
	maxRetryAfter = time.Minute
)

// WaitOption configures Wait.
type WaitOption func(*waitConfig)

type waitConfig struct {
	interval   time.Duration
	onProgress func(*protocol.Job)
	maxRetries int
}

// PollEvery sets how often Wait polls the job (default DefaultPollInterval).
// Non-positive values keep the default.
func PollEvery(d time.Duration) WaitOption {
	return func(c *waitConfig) {
		if d > 0 {
			c.interval = d
		}
	}
}

// OnProgress registers fn to observe the job while Wait polls: it is called
// with the first job observed, then each time the status, current state,
// progress, progress message, error message or update time changes, and
// therefore always with the terminal job before Wait returns it. fn runs on
// Wait's goroutine and may keep the job; Wait does not call it after
// returning.
func OnProgress(fn func(*protocol.Job)) WaitOption {
	return func(c *waitConfig) { c.onProgress = fn }
}

// MaxRetries sets how many consecutive transient failures Wait tolerates
// before it returns the last one (default DefaultMaxRetries; 0 = none).
// Transient failures are network errors, 5xx answers other than 501, and
// 429 answers whose Retry-After is at most a minute. Wait backs off
// exponentially between them, from the poll interval up to 10 s, and never
// sooner than a Retry-After asks.
func MaxRetries(n int) WaitOption {
	return func(c *waitConfig) { c.maxRetries = max(n, 0) }
}

// Wait polls a job until its status is terminal (finished, failed,
// cancelled, error or quarantined) and returns it. It returns early with an
// error when ctx ends, when the job cannot be read (ErrNotFound, ...), or
// after more consecutive transient failures than MaxRetries allows.
func (c *Client) Wait(ctx context.Context, id string, opts ...WaitOption) (*protocol.Job, error) {
	op := "wait for job " + strconv.Quote(id)
	cfg := waitConfig{interval: DefaultPollInterval, maxRetries: DefaultMaxRetries}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	seg, err := segment("job id", id)
	if err != nil {
		return nil, wrap(op, err)
	}
	if ctx == nil {
		return nil, wrap(op, fmt.Errorf("%w: nil context", ErrInvalid))
	}
	var (
		last     *protocol.Job
		failures int
	)
	for {
		job, err := c.getJob(ctx, seg, nil)
		delay := cfg.interval
		switch {
		case err == nil:
			failures = 0
			if cfg.onProgress != nil && (last == nil || changed(last, job)) {
				cfg.onProgress(job)
			}
			last = job
			if job.Status.Terminal() {
				return job, nil
			}
		case ctx.Err() != nil:
			return nil, waitStopped(op, last, context.Cause(ctx))
		default:
			d, ok := transient(err)
			if !ok || failures >= cfg.maxRetries {
				if ok {
					err = fmt.Errorf("giving up after %d consecutive failures: %w", failures+1, err)
				}
				return nil, wrap(op, err)
			}
			failures++
			delay = max(backoff(cfg.interval, failures), d)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, waitStopped(op, last, context.Cause(ctx))
		case <-t.C:
		}
	}
}

func waitStopped(op string, last *protocol.Job, cause error) error {
	if last != nil {
		op += fmt.Sprintf(" (last status %s)", last.Status)
	}
	return wrap(op, cause)
}

// changed reports whether a progress observer should hear about b after a.
func changed(a, b *protocol.Job) bool {
	return a.Status != b.Status ||
		a.CurrentState != b.CurrentState ||
		a.Progress != b.Progress ||
		a.ProgressMessage != b.ProgressMessage ||
		a.ErrorMessage != b.ErrorMessage ||
		!sameTime(a.UpdatedAt, b.UpdatedAt)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// transient reports whether a poll failure is worth retrying, and the least
// delay the server asked for.
func transient(err error) (time.Duration, bool) {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch code := apiErr.StatusCode; {
		case code == 429 && apiErr.RetryAfter > 0, code >= 500 && code != 501:
			if apiErr.RetryAfter > maxRetryAfter {
				return 0, false
			}
			return apiErr.RetryAfter, true
		}
		return 0, false
	}
	var urlErr *url.Error // the transport failed: refused, reset, timed out, ...
	return 0, errors.As(err, &urlErr)
}

// backoff is interval·2^(failures-1), at most max(interval, maxBackoff).
func backoff(interval time.Duration, failures int) time.Duration {
	limit := max(interval, maxBackoff)
	d := interval
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
