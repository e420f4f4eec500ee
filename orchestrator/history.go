package orchestrator

import (
	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
)

// historyEvent turns an engine event into an audit-trail entry, with the
// job's client-API view as the snapshot.
func historyEvent(ev engine.Event) history.Event {
	he := history.Event{
		Time: ev.Time, Type: history.EventType(ev.Type), JobID: ev.JobID, State: ev.State, PrevState: ev.PrevState,
		TaskID: ev.TaskID, WorkerID: ev.WorkerID, Detail: ev.Detail,
	}
	if n, ok := ev.Detail["attempt"].(int); ok {
		he.Attempt = n
	}
	if ev.Job != nil {
		view := api.JobView(ev.Job)
		he.Job, he.Blueprint, he.Client = &view, ev.Job.Blueprint, ev.Job.Client.Name
		if he.JobID == "" {
			he.JobID = ev.Job.ID
		}
	}
	return he
}
