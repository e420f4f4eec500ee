package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// LostJob is what the audit trail knows of a job whose live state is gone.
type LostJob struct {
	ID, Blueprint, State string
	Client               string
	WebhookURL           string
	InitialData          map[string]any
	StateHistory         map[string]any
	ParentJobID          string
	CreatedAt            time.Time
}

// FailLost ends a job that the audit trail shows running but the live store
// no longer has (the store lost its data): it is written back as failed,
// with a message saying why, so that clients, webhooks, metrics and history
// learn of its end like of any other. A job the live store has is left
// alone (false).
func (e *Engine) FailLost(ctx context.Context, lost LostJob, why string) (bool, error) {
	if _, err := e.store.LoadJob(ctx, lost.ID); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	now := e.now()
	j := &store.Job{
		ID: lost.ID, Blueprint: lost.Blueprint, Status: protocol.StatusRunning, CurrentState: lost.State,
		InitialData: lost.InitialData, StateHistory: lost.StateHistory, ParentJobID: lost.ParentJobID,
		Client: store.Client{Name: lost.Client}, WebhookURL: lost.WebhookURL,
		CreatedAt: lost.CreatedAt, UpdatedAt: now,
	}
	if j.StateHistory == nil {
		j.StateHistory = map[string]any{}
	}
	t := &txn{now: now}
	j.Loaded.All = true // nothing else of it exists
	e.finish(t, j, protocol.StatusFailed, why, nil)
	events, err := e.encodeEvents(t.events, j)
	if err != nil {
		return false, err
	}
	t.fx.Events = events
	if err := e.store.CreateJob(ctx, j, t.fx); err != nil {
		if errors.Is(err, store.ErrExists) {
			return false, nil // another orchestrator wrote it first
		}
		return false, fmt.Errorf("record the loss of job %s: %w", lost.ID, err)
	}
	e.committed(t, j)
	return true, nil
}
