package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// epochKey marks a live store as the one the deployment has been writing
// to. A store without it is new, or lost its data (a Redis restarted
// without persistence, an orchestrator on the memory store restarted).
const epochKey = "deployment-epoch"

// epochCheckInterval is how often the live store is checked for data loss.
const epochCheckInterval = 10 * time.Second

// lostMessage is the error_message of a job the live store lost.
const lostMessage = "the live state of this job was lost (the live store restarted without its data: Redis must persist, see README); the job did not finish"

// unfinished are the statuses of a job that has not ended.
var unfinished = []protocol.JobStatus{
	protocol.StatusPending, protocol.StatusRunning, protocol.StatusWaitingForWorker, protocol.StatusWaitingForHuman,
	protocol.StatusWaitingParallel, protocol.StatusWaitingForSubJob,
}

// watchLiveState checks, at start and every epochCheckInterval, that the
// live store still has the deployment's epoch. When it does not, the jobs
// that history shows unfinished and the store no longer has are ended as
// failed, loudly: data loss is never silent.
func (o *Orchestrator) watchLiveState(ctx context.Context) {
	t := time.NewTicker(epochCheckInterval)
	defer t.Stop()
	for {
		if err := o.checkLiveState(ctx); err != nil && ctx.Err() == nil {
			o.cfg.Logger.Warn("live state check failed; trying again later", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *Orchestrator) checkLiveState(ctx context.Context) error {
	now := time.Now() // creations before it are history's to count
	fresh, err := o.cfg.Store.SetOnce(ctx, epochKey, 0)
	if err != nil || !fresh {
		return err
	}
	// Only the process that set the epoch gets here: one reconciliation.
	if o.history == nil {
		return nil // nothing remembers what the store held
	}
	// Quota counters lived in the store: charge back this month's jobs.
	raised, qerr := api.RestoreQuotas(ctx, o.cfg.Store, o.history, o.clients.List(), now)
	for client, n := range raised {
		o.cfg.Logger.Warn("monthly quota count restored from history after the live store lost it", "client", client, "jobs", n)
	}
	lost, err := o.failLostJobs(ctx)
	if lost > 0 {
		o.cfg.Logger.Error("the live store lost its data: jobs that history shows unfinished are gone from it; they were ended as failed",
			"jobs", lost, "hint", "run Redis with persistence (appendonly yes)")
	}
	return errors.Join(qerr, err)
}

// failLostJobs ends, as failed, every job that history shows unfinished and
// the live store does not have; it returns how many.
func (o *Orchestrator) failLostJobs(ctx context.Context) (int, error) {
	n := 0
	for _, status := range unfinished {
		cursor := ""
		for {
			jobs, next, err := o.history.ListJobs(ctx, history.JobFilter{Status: status, Limit: history.MaxLimit, Cursor: cursor})
			if err != nil {
				return n, fmt.Errorf("list %s jobs in history: %w", status, err)
			}
			for _, v := range jobs {
				ok, err := o.eng.FailLost(ctx, engine.LostJob{
					ID: v.ID, Blueprint: v.Blueprint, State: v.CurrentState, Client: v.Client, WebhookURL: v.WebhookURL,
					InitialData: v.InitialData, StateHistory: v.StateHistory, ParentJobID: v.ParentJobID, CreatedAt: valueOf(v.CreatedAt),
				}, lostMessage)
				if err != nil {
					return n, err
				}
				if ok {
					n++
					o.cfg.Logger.Error("job lost with the live state; ended as failed", "job_id", v.ID, "blueprint", v.Blueprint, "client", v.Client)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return n, nil
}

func valueOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
