package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// retryBy says who retried a job, in its audit trail (job_retried's by).
func retryBy(v *viewer) string {
	if v.Admin {
		return "admin in the console"
	}
	return "client " + v.Name + " in the console"
}

// retryStatuses are the statuses a bulk retry lists for a filter's
// status: both retryable ones when it names none, none when it names
// another.
func retryStatuses(status string) []string {
	switch {
	case status == "":
		return []string{string(protocol.StatusFailed), string(protocol.StatusQuarantined)}
	case engine.Retryable(protocol.JobStatus(status)):
		return []string{status}
	}
	return nil
}

// retryOp runs the failed and quarantined jobs of a filter again.
func (c *Console) retryOp(v *viewer) *bulkOp {
	return &bulkOp{Verb: "Retry", Action: Prefix + "jobs/retry", Which: "failed or quarantined",
		Note: "Each runs again from the state it failed in. Jobs that cannot be retried (a child job, " +
			"an end its blueprint chose without a failed task, a blueprint that changed) are left as they are and counted after.",
		statuses: retryStatuses,
		keep:     engine.Retryable,
		act: func(ctx context.Context, id string) error {
			_, err := c.opts.Engine.RetryJob(ctx, id, retryBy(v))
			return err
		},
		skipped: func(err error) bool {
			return errors.Is(err, engine.ErrNotRetryable) || errors.Is(err, engine.ErrJobNotFound)
		},
		done: func(n, m int, why error) string {
			msg := fmt.Sprintf("%d jobs retried (%d could not be).", n, m)
			if why != nil {
				msg += " The first: " + refusal(why)
			}
			return msg
		},
	}
}

// refusal is why a retry was refused, without the error's prefix.
func refusal(err error) string {
	if errors.Is(err, engine.ErrJobNotFound) {
		return "the job's live record has expired (the store's retention): it can no longer be retried."
	}
	return strings.TrimPrefix(err.Error(), engine.ErrNotRetryable.Error()+": ")
}

func (c *Console) bulkRetry(w http.ResponseWriter, r *http.Request, v *viewer) {
	c.bulk(w, r, v, c.retryOp(v))
}

// retry runs one failed or quarantined job of the viewer's again.
func (c *Console) retry(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, err := c.opts.API.JobFor(r.Context(), v.owner(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	back := Prefix + "jobs/" + url.PathEscape(view.ID)
	if _, err := c.opts.Engine.RetryJob(r.Context(), view.ID, retryBy(v)); err != nil {
		// Listed from history, the job may be gone from the live store.
		if errors.Is(err, engine.ErrNotRetryable) || errors.Is(err, engine.ErrJobNotFound) {
			c.render(w, r, http.StatusConflict, "message", v, map[string]any{"Title": "Not retried", "Message": refusal(err), "Back": back})
			return
		}
		c.fail(w, r, v, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// quarantine lists the viewer's quarantined jobs, with their errors, to
// retry one or all.
func (c *Console) quarantine(w http.ResponseWriter, r *http.Request, v *viewer) {
	f := jobFilter{Status: string(protocol.StatusQuarantined), Cursor: r.URL.Query().Get("cursor")}
	list, err := c.listJobs(r.Context(), v, f)
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.current(r.Context(), v, list.Jobs)
	data := map[string]any{"Filter": f, "Jobs": list.Jobs, "Next": list.NextCursor}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "quarantinepanel" // the live reload of the first page
	}
	c.render(w, r, http.StatusOK, "quarantine", v, data)
}

// webhookAttempt is one delivery attempt of a job's webhook, from its
// audit trail (the engine's webhook_attempt events).
type webhookAttempt struct {
	Time       time.Time
	N          int
	Event      string // job_finished, job_failed, job_waiting_for_human...
	StatusCode int    // 0: no answer
	Outcome    string // delivered, retrying, gave_up, superseded
	Error      string
}

// webhookLog gathers a job's webhook delivery attempts, oldest first.
func webhookLog(events []history.Event) []webhookAttempt {
	var out []webhookAttempt
	for _, ev := range events {
		if engine.EventType(ev.Type) != engine.EventWebhookAttempt {
			continue
		}
		a := webhookAttempt{Time: ev.Time}
		n, _ := ev.Detail["attempt"].(float64)
		code, _ := ev.Detail["status_code"].(float64)
		a.N, a.StatusCode = int(n), int(code)
		a.Event, _ = ev.Detail["event"].(string)
		a.Outcome, _ = ev.Detail["outcome"].(string)
		a.Error, _ = ev.Detail["error"].(string)
		out = append(out, a)
	}
	return out
}
