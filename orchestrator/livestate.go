package orchestrator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// epochKey marks a live store as the one the deployment has been writing
// to. A store without it is new, or lost its data (a Redis restarted
// without persistence, an orchestrator on the memory store restarted).
const epochKey = "deployment-epoch"

// storeIDKey holds the live store's random id. History records, for each
// job, the id of the live store it lives in, and when each live store was
// last seen: orchestrators with their own live stores (two memory-store
// processes, two Redis deployments) can share one history database, and
// only the jobs of a live store nobody sees any more count as lost.
const storeIDKey = "deployment-store-id"

// reconcileKey lets one orchestrator of a deployment per check interval
// look for the jobs of stale live stores (failing one is idempotent, so an
// overlap costs only the work).
const reconcileKey = "deployment-reconcile"

// Defaults of the live store's check interval, and of the time after which
// a live store not seen is gone: a few intervals, so that a slow refresh
// does not fail a running deployment's jobs.
const (
	epochCheckInterval = 10 * time.Second
	staleChecks        = 6
)

// lostMessage is the error_message of a job the live store lost.
const lostMessage = "the live state of this job was lost (the live store restarted without its data: Redis must persist, see README); the job did not finish"

// unfinished are the statuses of a job that has not ended.
var unfinished = []protocol.JobStatus{
	protocol.StatusPending, protocol.StatusRunning, protocol.StatusWaitingForWorker, protocol.StatusWaitingForHuman,
	protocol.StatusWaitingParallel, protocol.StatusWaitingForSubJob,
}

// checkIntervals returns how often the live store is checked and after
// how long a live store not seen is gone.
func (o *Orchestrator) checkIntervals() (every, stale time.Duration) {
	every, stale = o.cfg.liveCheckInterval, o.cfg.liveStaleAfter
	if every <= 0 {
		every = epochCheckInterval
	}
	if stale <= 0 {
		stale = staleChecks * every
	}
	return every, stale
}

// watchLiveState checks, at start and every check interval, the live
// store: its epoch, its id, and the jobs of live stores that are gone.
func (o *Orchestrator) watchLiveState(ctx context.Context) {
	every, _ := o.checkIntervals()
	t := time.NewTicker(every)
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

// checkLiveState refreshes the live store's row in history and ends, as
// failed, the jobs lost with a live store: when this store is fresh, the
// unfinished jobs recorded without a live store (before live stores were
// recorded) that it lacks; and, once per interval in a deployment, the
// unfinished jobs of every live store not seen for the stale time.
func (o *Orchestrator) checkLiveState(ctx context.Context) error {
	now := time.Now() // creations before it are history's to count
	fresh, err := o.cfg.Store.SetOnce(ctx, epochKey, 0)
	if err != nil {
		return err
	}
	id, err := o.liveStoreID(ctx)
	if err != nil || o.history == nil {
		return err // without history nothing remembers what the store held
	}
	stores, tracked := o.history.(history.LiveStores)
	if tracked {
		if err := stores.SeeLiveStore(ctx, id, now); err != nil {
			return fmt.Errorf("refresh the live store in history: %w", err)
		}
	}
	var errs []error
	if fresh {
		// Only the process that set the epoch gets here: one reconciliation.
		// Quota counters lived in the store: charge back this month's jobs.
		raised, qerr := api.RestoreQuotas(ctx, o.cfg.Store, o.history, o.clients.List(), now)
		for client, n := range raised {
			o.cfg.Logger.Warn("monthly quota count restored from history after the live store lost it", "client", client, "jobs", n)
		}
		errs = append(errs, qerr)
		var unstamped *string // every job, where history has no live stores
		if tracked {
			unstamped = new(string)
		}
		lost, err := o.failLostJobs(ctx, unstamped)
		o.reportLost(lost, "")
		errs = append(errs, err)
	}
	if tracked {
		errs = append(errs, o.failStaleStores(ctx, stores, id, now))
	}
	return errors.Join(errs...)
}

// failStaleStores ends the unfinished jobs of the live stores not seen for
// the stale time, in one orchestrator of the deployment per interval.
func (o *Orchestrator) failStaleStores(ctx context.Context, stores history.LiveStores, own string, now time.Time) error {
	every, stale := o.checkIntervals()
	mine, err := o.cfg.Store.SetOnce(ctx, reconcileKey, every)
	if err != nil || !mine {
		return err
	}
	ids, err := stores.StaleLiveStores(ctx, now.Add(-stale))
	if err != nil {
		return fmt.Errorf("find stale live stores: %w", err)
	}
	for _, gone := range ids {
		if gone == own {
			continue // seen just now; another process's slow clock
		}
		lost, err := o.failLostJobs(ctx, &gone)
		o.reportLost(lost, gone)
		if err != nil {
			return fmt.Errorf("end the jobs of live store %s: %w", gone, err)
		}
	}
	return nil
}

func (o *Orchestrator) reportLost(n int, store string) {
	if n > 0 {
		o.cfg.Logger.Error("the live store lost its data: jobs that history shows unfinished are gone from it; they were ended as failed",
			"jobs", n, "live_store", store, "hint", "run Redis with persistence (appendonly yes)")
	}
}

// liveStoreID returns the live store's id, giving the store a random one
// when it has none (new, or lost its data). Of processes doing so at once,
// the last writer's id wins on read-back; an earlier one's jobs are
// stamped again with their next event. The id is recorded as seen in
// history before it is returned, so that no job is stamped with an id
// history has not seen.
func (o *Orchestrator) liveStoreID(ctx context.Context) (string, error) {
	id, err := o.cfg.Store.GetValue(ctx, storeIDKey)
	if errors.Is(err, store.ErrNotFound) {
		if err := o.cfg.Store.PutValue(ctx, storeIDKey, rand.Text(), 0); err != nil {
			return "", fmt.Errorf("give the live store an id: %w", err)
		}
		id, err = o.cfg.Store.GetValue(ctx, storeIDKey)
	}
	if err != nil {
		return "", fmt.Errorf("read the live store's id: %w", err)
	}
	if stores, ok := o.history.(history.LiveStores); ok && o.seenStore.Load() != id {
		if err := stores.SeeLiveStore(ctx, id, time.Now()); err != nil {
			return "", fmt.Errorf("record the live store in history: %w", err)
		}
		o.seenStore.Store(id)
	}
	return id, nil
}

// failLostJobs ends, as failed, every job that history shows unfinished in
// live store liveStore (nil: in any) and this live store does not have; it
// returns how many.
func (o *Orchestrator) failLostJobs(ctx context.Context, liveStore *string) (int, error) {
	n := 0
	for _, status := range unfinished {
		cursor := ""
		for {
			jobs, next, err := o.history.ListJobs(ctx, history.JobFilter{Status: status, Limit: history.MaxLimit, Cursor: cursor, LiveStore: liveStore})
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
