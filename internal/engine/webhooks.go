package engine

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// errOwned tells the timer loop that a timer is being handled in the
// background, which deletes (or re-arms) it when done. If this process dies
// meanwhile, the timer fires again after its visibility window: webhooks
// are delivered at least once.
var errOwned = errors.New("timer handled in the background")

// fireWebhook starts one delivery attempt of a job's end notification.
// approvalWebhook is the Ref of the webhook timer that announces a pending
// approval (job_waiting_for_human).
const approvalWebhook = "approval"

func (e *Engine) fireWebhook(ctx context.Context, tm store.Timer) error {
	j, err := e.store.LoadJob(ctx, tm.JobID)
	if err != nil {
		return err
	}
	if tm.Ref == approvalWebhook {
		// Only while that approval is pending: once decided, the URL is spent.
		if j.Status != protocol.StatusWaitingForHuman || j.Approval == nil || j.WebhookURL == "" || e.cfg.Webhooks == nil {
			return nil
		}
	} else if !j.Status.Terminal() || j.WebhookURL == "" || e.cfg.Webhooks == nil {
		return nil
	}
	return e.inBackground(ctx, tm, func(ctx context.Context) { e.deliver(ctx, tm, j) })
}

// endNotice is attempt seq of the webhook that announces the end of j.
// Its Ref names that end (FinishedAt), so that the chain of one end and
// that of the next, after a retry revived the job, never share a timer
// key: an attempt of the old chain that finishes late deletes its own
// timer, not the first of the new chain.
func endNotice(j *store.Job, seq int, at time.Time) store.Timer {
	ref := ""
	if j.FinishedAt != nil {
		ref = "end-" + strconv.FormatInt(j.FinishedAt.UnixNano(), 10)
	}
	return store.Timer{JobID: j.ID, Kind: store.TimerWebhook, Ref: ref, Seq: seq, At: at}
}

// backgroundRetry is how soon a timer whose background work found every
// slot busy fires again.
const backgroundRetry = time.Second

// inBackground runs the I/O of a timer (a webhook delivery, deleting
// objects) on one of a bounded number of goroutines, so that the timer
// loop never waits on a slow receiver or object store: when every slot is
// busy the timer moves a moment later and the loop goes on. fn owns the
// timer: it deletes or moves it when done.
func (e *Engine) inBackground(ctx context.Context, tm store.Timer, fn func(ctx context.Context)) error {
	select {
	case e.hooks <- struct{}{}:
	default:
		tm.At = e.now().Add(backgroundRetry)
		if err := e.store.AddTimers(ctx, tm); err != nil {
			return err
		}
		return errOwned
	}
	e.spawn(func() {
		defer func() { <-e.hooks }()
		fn(e.ctx)
	})
	return errOwned
}

func (e *Engine) deliver(ctx context.Context, tm store.Timer, j *store.Job) {
	p := protocol.WebhookPayload{
		Event: protocol.WebhookEvent(j.Status), JobID: j.ID, Blueprint: j.Blueprint, Status: j.Status,
		Result: j.Result, Timestamp: e.now().Unix(), Attempt: tm.Seq,
	}
	if j.ErrorMessage != "" {
		msg := j.ErrorMessage
		p.Error = &msg
	}
	if tm.Ref == approvalWebhook {
		at := j.Approval.ExpiresAt
		p.Event, p.Result, p.Error = protocol.WebhookJobWaitingForHuman, nil, nil
		p.Approval = &protocol.ApprovalInfo{Message: j.Approval.Message, Decisions: j.Approval.Decisions,
			URL: protocol.ApprovalURL(e.cfg.PublicURL, j.ID, j.Approval.Token), ExpiresAt: &at}
	}
	status, retry, err := e.cfg.Webhooks.Deliver(ctx, j.WebhookURL, p)
	if ctx.Err() != nil {
		return // stopping: the timer fires again on the next start
	}
	detail := map[string]any{"attempt": tm.Seq, "status_code": status, "event": p.Event, "url": j.WebhookURL}
	outcome := "delivered"
	switch {
	case err == nil:
	case retry && tm.Seq < e.cfg.WebhookAttempts && e.now().Add(e.webhookDelay(tm.Seq)).Before(webhookDeadline(j, e.cfg.WebhookWindow)):
		outcome = "retrying"
		if !e.sameNotice(ctx, tm, j) {
			// The job left what this attempt announced (a retry revived it,
			// cancelling this chain's timers while the attempt ran): the
			// next end starts its own chain.
			outcome = "superseded"
			break
		}
		next := tm
		next.Seq++
		next.At = e.now().Add(e.webhookDelay(tm.Seq))
		if aerr := e.store.AddTimers(ctx, next); aerr != nil {
			e.log.Error("schedule webhook retry", "job_id", j.ID, "error", aerr)
			return // the claimed timer fires again later
		}
		e.wakeTimers(next.At)
	default:
		outcome = "gave_up"
	}
	if err != nil {
		detail["error"] = err.Error()
		e.log.Warn("webhook attempt failed", "job_id", j.ID, "attempt", tm.Seq, "outcome", outcome, "error", err)
	}
	detail["outcome"] = outcome
	e.publish(ctx, Event{Type: EventWebhookAttempt, Time: e.now(), Job: j, JobID: j.ID, Detail: detail})
	if derr := e.store.DeleteTimers(ctx, tm.Key()); derr != nil {
		e.log.Warn("delete webhook timer", "job_id", j.ID, "error", derr)
	}
}

// sameNotice reports whether the job still is what the webhook attempt
// tm announced of snapshot j: the same end (or the same pending
// approval). A job that cannot be read counts as unchanged, so that the
// attempt is retried rather than lost.
func (e *Engine) sameNotice(ctx context.Context, tm store.Timer, j *store.Job) bool {
	now, err := e.store.LoadJob(ctx, j.ID)
	if err != nil {
		return !errors.Is(err, store.ErrNotFound)
	}
	if tm.Ref == approvalWebhook {
		return now.Approval != nil && j.Approval != nil && now.Approval.Token == j.Approval.Token
	}
	return now.Status == j.Status && now.FinishedAt != nil && j.FinishedAt != nil && now.FinishedAt.Equal(*j.FinishedAt)
}

// webhookDelay is the wait after failed attempt n: WebhookBackoff doubling,
// at most WebhookBackoffMax.
func (e *Engine) webhookDelay(n int) time.Duration {
	d := e.cfg.WebhookBackoff
	for i := 1; i < n && d < e.cfg.WebhookBackoffMax; i++ {
		d *= 2
	}
	return min(d, e.cfg.WebhookBackoffMax)
}

// webhookDeadline is when attempts at a job's notification stop.
func webhookDeadline(j *store.Job, window time.Duration) time.Time {
	end := j.UpdatedAt
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	return end.Add(window)
}
