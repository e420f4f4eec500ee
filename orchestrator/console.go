package orchestrator

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/internal/console"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// The web console (internal/console) is served at /console/, and / redirects
// there. Its live updates come from the outbox through a local consumer, so
// that a job step committed by any orchestrator on the same Redis reaches
// the consoles connected to each; without a history database, only while a
// page listens in one of them (audience.go). An in-memory store serves one
// process only: without a history database its job events are not written
// to the outbox (encodeEvent), and the console gets them in process
// instead.

// mountConsole builds the console over the API server s and mounts it.
func (o *Orchestrator) mountConsole(s *api.Server) error {
	opts := console.Options{API: s, Engine: o.eng, Clients: o.clients, Schedules: o.scheduleInfo, Logger: o.cfg.Logger}
	if o.consoleByOutboxOnly() {
		opts.OnListen, opts.CatchUp = o.audience.opened, catchUp
	}
	if gv, err := backend.Lookup(backend.Graphviz); err == nil {
		opts.RenderSVG = gv.RenderSVG
	}
	c, err := console.New(opts)
	if err != nil {
		return err
	}
	s.Mount(console.Prefix, c.Handler())
	s.Mount("GET /{$}", http.HandlerFunc(console.Redirect))
	o.console.Store(c)
	return nil
}

// closeHTTP releases the requests that wait (long polls, WebSockets, the
// console's live streams), so that an HTTP server's Shutdown does not wait
// for them.
func (o *Orchestrator) closeHTTP() {
	if s := o.api.Load(); s != nil {
		s.Close()
	}
	if c := o.console.Load(); c != nil {
		c.Close()
	}
}

// consoleInProcess reports whether the console takes job events in process
// rather than from the outbox: an in-memory store (one process) without a
// history database, whose outbox keeps only cancel commands.
func (o *Orchestrator) consoleInProcess() bool {
	_, mem := o.cfg.Store.(*memory.Store)
	return mem && o.history == nil
}

// consoleByOutboxOnly reports whether job events go to the outbox for the
// consoles alone (a shared store, no history database): then only while a
// page listens somewhere (audience).
func (o *Orchestrator) consoleByOutboxOnly() bool {
	return !o.consoleInProcess() && o.history == nil
}

// keepEvent reports whether an event goes to the outbox: cancel commands
// always, every event for the history writer, and job events for the
// consoles of every orchestrator on a shared store while a page listens in
// one (audience). An in-memory store without history keeps only cancel
// commands, so that no other write pays for an outbox nobody reads.
func (o *Orchestrator) keepEvent(ev engine.Event) bool {
	switch {
	case ev.Type == engine.EventCancelTask || o.history != nil:
		return true
	case o.consoleInProcess():
		return false
	default:
		return (ev.JobID != "" || ev.Job != nil) && o.audience.listening()
	}
}

// encodeConsoleEvent encodes an event for consoles alone (no history
// reads the outbox): which job changed, how and its status, without the
// event's details or the job's snapshot, so that a job write on a shared
// store pays little for consoles that may not be open.
func encodeConsoleEvent(ev engine.Event) ([]byte, error) {
	he := consoleEvent(ev)
	return json.Marshal(outboxEvent{Event: he, Job: he.Job})
}

// consoleEvent is what a console hears of an event: the job, the change and
// the job's status after it.
func consoleEvent(ev engine.Event) history.Event {
	he := historyEvent(ev, false)
	he.Detail = nil
	if ev.Job != nil {
		he.Job = &protocol.Job{ID: ev.Job.ID, Status: ev.Job.Status, CurrentState: ev.Job.CurrentState}
	}
	return he
}

// notifyConsole is the console's outbox consumer, in every process.
func (o *Orchestrator) notifyConsole(_ context.Context, entries []store.OutboxEntry) error {
	c := o.console.Load()
	if c == nil || o.consoleInProcess() || !c.Listening() {
		return nil // a page opened later loads what is current
	}
	return eachOutboxEvent(entries, c.Notify)
}

// notifyConsoleInProcess passes an event committed in this process to the
// console when the outbox does not carry it.
func (o *Orchestrator) notifyConsoleInProcess(ev engine.Event) {
	if c := o.console.Load(); c != nil && o.consoleInProcess() && ev.JobID != "" && c.Listening() {
		c.Notify(consoleEvent(ev))
	}
}
