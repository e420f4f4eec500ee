package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// openHistory opens the database HistoryURI names through its linked
// backend; nil for none.
func openHistory(uri string) (history.Store, error) {
	t, err := backend.ParseHistoryURI(uri)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	if t.Kind == backend.None {
		return nil, nil
	}
	b, err := backend.Lookup(t.Kind)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hs, err := b.OpenHistory(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	return hs, nil
}

// historyEvent turns an engine event into an audit-trail entry; withJob
// adds the job's client-API view as the snapshot.
func historyEvent(ev engine.Event, withJob bool) history.Event {
	he := history.Event{
		ID: ev.ID, Time: ev.Time, Type: history.EventType(ev.Type), JobID: ev.JobID, State: ev.State, PrevState: ev.PrevState,
		TaskID: ev.TaskID, WorkerID: ev.WorkerID, Detail: ev.Detail,
	}
	if n, ok := ev.Detail["attempt"].(int); ok {
		he.Attempt = n
	}
	if ev.Job != nil {
		he.Blueprint, he.Client = ev.Job.Blueprint, ev.Job.Client.Name
		if withJob {
			view := api.JobView(ev.Job)
			he.Job = &view
		}
		if he.JobID == "" {
			he.JobID = ev.Job.ID
		}
	}
	return he
}

// outboxEvent is the form events take in the store's outbox: the audit
// trail entry, with the job snapshot that history.Event leaves out of its
// JSON.
type outboxEvent struct {
	history.Event
	Job *protocol.Job `json:"job,omitempty"`
}

// encodeOutboxEvent is the engine's Config.EncodeEvent.
func encodeOutboxEvent(ev engine.Event, withJob bool) ([]byte, error) {
	he := historyEvent(ev, withJob)
	return json.Marshal(outboxEvent{Event: he, Job: he.Job})
}

func decodeOutboxEvent(b []byte) (history.Event, error) {
	var oe outboxEvent
	if err := json.Unmarshal(b, &oe); err != nil {
		return history.Event{}, fmt.Errorf("decode outbox event: %w", err)
	}
	oe.Event.Job = oe.Job
	return oe.Event, nil
}

// historyWriteTimeout bounds one batch written to the history database; a
// batch that fails is written again (the outbox relay retries it).
const historyWriteTimeout = 30 * time.Second

// writeHistory is the outbox consumer that keeps the audit trail. Writes
// are idempotent on the event id, so a batch handled twice is stored once.
func (o *Orchestrator) writeHistory(ctx context.Context, entries []store.OutboxEntry) error {
	events := make([]history.Event, 0, len(entries))
	for _, e := range entries {
		ev, err := decodeOutboxEvent(e.Data)
		if err == nil {
			_, err = history.Encode(ev)
		}
		if err != nil {
			// Retrying cannot help an event that does not encode.
			o.cfg.Logger.Error("history event dropped", "outbox_id", e.ID, "error", err)
			continue
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, historyWriteTimeout)
	defer cancel()
	// The jobs live in the store whose outbox had these events: read its
	// id now, not at the last check, so that jobs written after a data
	// loss are not stamped with the id of the store that lost them.
	id, err := o.liveStoreID(ctx)
	if err != nil {
		return err
	}
	for i := range events {
		events[i].LiveStore = id
	}
	if err := o.history.Append(ctx, events); err != nil {
		return fmt.Errorf("write %d history events: %w", len(events), err)
	}
	return nil
}

// pushCommands is the outbox consumer, in every process, that sends cancel
// commands to the workers connected to this process over WebSocket, so a
// cancel reaches a worker whichever orchestrator it is connected to.
func (o *Orchestrator) pushCommands(_ context.Context, entries []store.OutboxEntry) error {
	s := o.api.Load()
	if s == nil {
		return nil
	}
	// Only an entry that names the type (as its JSON holds it) can be a
	// cancel: the others are not decoded.
	needle := []byte(`"` + engine.EventCancelTask + `"`)
	var cancels []store.OutboxEntry
	for _, e := range entries {
		if bytes.Contains(e.Data, needle) {
			cancels = append(cancels, e)
		}
	}
	return eachOutboxEvent(cancels, func(ev history.Event) {
		if ev.Type == history.EventType(engine.EventCancelTask) {
			s.OnEvent(engine.Event{Type: engine.EventCancelTask, JobID: ev.JobID, TaskID: ev.TaskID, WorkerID: ev.WorkerID})
		}
	})
}

// eachOutboxEvent decodes entries and passes each event to fn; entries that
// do not decode are skipped and reported together.
func eachOutboxEvent(entries []store.OutboxEntry, fn func(history.Event)) error {
	var errs []error
	for _, e := range entries {
		ev, err := decodeOutboxEvent(e.Data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fn(ev)
	}
	return errors.Join(errs...)
}
