package console

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
)

// Live updates: the orchestrator feeds Notify with every job event its
// outbox relays to this process (a local consumer, so an event committed
// by any orchestrator on the same Redis reaches the consoles connected to
// each); open pages listen on a Server-Sent Events stream and reload the
// part that changed.

// hub fans job events out to the streams open in this process.
type hub struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
}

// sub is one open stream: the jobs it may see (owner), optionally one
// job, and the latest change not yet sent (coalesced).
type sub struct {
	owner, jobID string
	ch           chan change
}

// change is what a stream tells the page: which job, now in which status
// and state.
type change struct {
	JobID  string `json:"job_id"`
	Type   string `json:"event_type"`
	Status string `json:"status,omitempty"`
	State  string `json:"state,omitempty"`
}

func newHub() *hub { return &hub{subs: map[*sub]struct{}{}} }

func (h *hub) subscribe(owner, jobID string) *sub {
	s := &sub{owner: owner, jobID: jobID, ch: make(chan change, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Notify passes a job event to the open streams that may see it. It never
// blocks: a stream that has not sent its last change yet gets the newest
// one instead (a page reloads the current job anyway).
func (c *Console) Notify(ev history.Event) {
	if ev.JobID == "" || ev.Client == "" {
		return
	}
	ch := change{JobID: ev.JobID, Type: string(ev.Type), State: ev.State}
	if ev.Job != nil {
		ch.Status = string(ev.Job.Status)
	}
	h := c.live
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if (s.jobID != "" && s.jobID != ev.JobID) || (s.owner != api.AnyOwner && s.owner != ev.Client) {
			continue
		}
		select {
		case s.ch <- ch:
		default:
			select { // replace the pending change with the newest
			case <-s.ch:
			default:
			}
			select {
			case s.ch <- ch:
			default:
			}
		}
	}
}

// keepAlive is how often an idle stream sends a comment, so that proxies
// keep it open and a closed browser is noticed.
const keepAlive = 20 * time.Second

// Pacing: a stream sends at most one change per interval; changes that
// arrive meanwhile are coalesced into the newest. A job's page hears of its
// job within jobPace, a list of any of its jobs within listPace, so that a
// busy orchestrator costs an open list one message a second, not one per
// event.
const (
	jobPace  = 200 * time.Millisecond
	listPace = time.Second
)

// stream serves a Server-Sent Events stream of the changes s receives,
// until the browser goes away or the console closes.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, s *sub) {
	defer c.live.unsubscribe(s)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if _, err := w.Write([]byte("retry: 2000\n: connected\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	pace := listPace
	if s.jobID != "" {
		pace = jobPace
	}
	wait := time.NewTimer(pace)
	defer wait.Stop()
	for {
		var msg []byte
		select {
		case <-r.Context().Done():
			return
		case <-c.closed:
			return
		case <-tick.C:
			msg = []byte(": keep-alive\n\n")
		case ch := <-s.ch:
			b, _ := json.Marshal(ch)
			msg = append(append([]byte("event: change\ndata: "), b...), "\n\n"...)
		}
		if _, err := w.Write(msg); err != nil || rc.Flush() != nil {
			return
		}
		if msg[0] == ':' {
			continue
		}
		// The next change no sooner than pace from now.
		wait.Reset(pace)
		select {
		case <-r.Context().Done():
			return
		case <-c.closed:
			return
		case <-wait.C:
		}
	}
}

// jobLive streams the changes of one job the viewer may see (another
// client's job: 404, as everywhere).
func (c *Console) jobLive(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, err := c.opts.API.JobFor(r.Context(), v.owner(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.stream(w, r, c.live.subscribe(v.owner(), view.ID))
}

// listLive streams the changes of every job the viewer may see.
func (c *Console) listLive(w http.ResponseWriter, r *http.Request, v *viewer) {
	c.stream(w, r, c.live.subscribe(v.owner(), ""))
}
