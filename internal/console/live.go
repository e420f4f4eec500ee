package console

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
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
	open atomic.Int32 // len(subs), read without the lock on every job write
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
	h.open.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.open.Store(int32(len(h.subs)))
	h.mu.Unlock()
}

// Listening reports whether a stream is open in this process: with none,
// the orchestrator need not decode events for Notify. It takes no lock: it
// is asked on every job write.
func (c *Console) Listening() bool { return c.live.open.Load() > 0 }

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
		offer(s.ch, ch) // replacing a pending change with the newest
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
	s := c.live.subscribe(v.owner(), view.ID)
	defer c.live.unsubscribe(s)
	c.streamJobs(w, r, s)
}

// streamJobs serves a stream of job changes: the process now has a
// listener, and the page one change more after CatchUp.
func (c *Console) streamJobs(w http.ResponseWriter, r *http.Request, s *sub) {
	if c.opts.OnListen != nil {
		c.opts.OnListen()
	}
	if c.opts.CatchUp > 0 {
		t := time.AfterFunc(c.opts.CatchUp, func() { offer(s.ch, change{Type: catchUpChange}) })
		defer t.Stop()
	}
	c.stream(w, r, s)
}

// catchUpChange is the type of the change a stream sends CatchUp after it
// opens.
const catchUpChange = "catch_up"

// listLive streams the changes of every job the viewer may see, or with
// ?topic= those of a live list (workers, workers:admin, queues, schedules).
func (c *Console) listLive(w http.ResponseWriter, r *http.Request, v *viewer) {
	topic := r.URL.Query().Get("topic")
	if topic == "" || topic == "jobs" {
		s := c.live.subscribe(v.owner(), "")
		defer c.live.unsubscribe(s)
		c.streamJobs(w, r, s)
		return
	}
	t, ok := topics[topic]
	switch {
	case !ok:
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Bad request", "Message": "unknown live topic " + topic})
		return
	case t.adminOnly && !v.Admin:
		c.render(w, r, http.StatusForbidden, "message", v, map[string]any{"Title": "Operators only", "Message": "Log in with the admin token."})
		return
	}
	s, done := c.subscribeTopic(topic, v)
	defer done()
	c.stream(w, r, s)
}

// Live lists of workers, queues and schedules: what they show lives in the
// store, which every orchestrator of a deployment writes, and changes
// without a job event (a worker registers, a heartbeat moves a load, a
// schedule runs). While a page of a topic is open in this process, one
// watcher per topic reads the page's data every topicPoll and tells the
// topic's streams when it changed; the page then reloads its panel. The
// store is read once per topic and interval, however many pages are open,
// and not at all when none is.

// topicPoll is how often an open topic is read.
const topicPoll = 2 * time.Second

// topics names the live lists and who may follow them.
// The workers list has one topic per audience, each digest made of what
// that audience's page shows: a client's must not change when only another
// client's task starts or ends.
var topics = map[string]struct{ adminOnly bool }{
	"workers": {}, "workers:admin": {adminOnly: true}, "queues": {adminOnly: true}, "schedules": {adminOnly: true},
}

// workersTopic is the workers list's topic for a viewer.
func workersTopic(v *viewer) string {
	if v.Admin {
		return "workers:admin"
	}
	return "workers"
}

// watch is one topic's watcher and its streams.
type watch struct {
	subs map[*sub]struct{}
	stop chan struct{}
}

// topicHub holds the watched topics of this process.
type topicHub struct {
	mu      sync.Mutex
	watches map[string]*watch
	running sync.WaitGroup // the watchers
}

// subscribeTopic adds a stream to a topic, starting its watcher if it is
// the first; the returned func removes it (and stops the watcher after the
// last).
func (c *Console) subscribeTopic(topic string, v *viewer) (*sub, func()) {
	s := &sub{owner: v.owner(), ch: make(chan change, 1)}
	h := &c.topics
	h.mu.Lock()
	defer h.mu.Unlock()
	wt := h.watches[topic]
	if wt == nil {
		wt = &watch{subs: map[*sub]struct{}{}, stop: make(chan struct{})}
		h.watches[topic] = wt
		select {
		case <-c.closed: // the stream ends at once; no watcher
		default:
			h.running.Go(func() { c.watchTopic(topic, wt) })
		}
	}
	wt.subs[s] = struct{}{}
	return s, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(wt.subs, s)
		if len(wt.subs) == 0 && h.watches[topic] == wt {
			delete(h.watches, topic)
			close(wt.stop)
		}
	}
}

// watchTopic reads a topic's digest every topicPoll until its last stream
// ends or the console closes, and sends a change when it differs.
func (c *Console) watchTopic(topic string, wt *watch) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-wt.stop:
		case <-c.closed:
		}
		cancel()
	}()
	t := time.NewTicker(topicPoll)
	defer t.Stop()
	last := ""
	for {
		d, err := c.digest(ctx, topic)
		switch {
		case err != nil && ctx.Err() == nil:
			c.opts.Logger.Warn("console: live list unavailable", "topic", topic, "error", err)
		case err == nil && last != "" && d != last:
			c.topics.mu.Lock()
			for s := range wt.subs {
				offer(s.ch, change{Type: topic})
			}
			c.topics.mu.Unlock()
		}
		if err == nil {
			last = d
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// offer puts ch in a stream's one-slot queue, replacing a change not yet
// sent.
func offer(q chan change, ch change) {
	select {
	case q <- ch:
		return
	default:
	}
	select {
	case <-q:
	default:
	}
	select {
	case q <- ch:
	default:
	}
}

// digest is a fingerprint of what a topic's page shows, but for what
// changes all the time without meaning anything (heartbeat times).
func (c *Console) digest(ctx context.Context, topic string) (string, error) {
	var v any
	switch topic {
	case "workers":
		rows, err := c.workerRows(ctx, false)
		if err != nil {
			return "", err
		}
		v = rows
	case "workers:admin":
		rows, err := c.workerRows(ctx, true)
		if err != nil {
			return "", err
		}
		waiting, err := c.waitingQueues(ctx)
		if err != nil {
			return "", err
		}
		v = []any{rows, waiting}
	case "queues":
		st := c.opts.Engine.Store()
		lengths, err := st.QueueLengths(ctx)
		if err != nil {
			return "", err
		}
		// This minute's figures and the last one's, so that figures written
		// just before a minute turns are not missed (and the charts move
		// on once a minute).
		now := time.Now()
		counts, err := st.StatsSince(ctx, now.Add(-time.Minute), now)
		if err != nil {
			return "", err
		}
		v = []any{lengths, counts}
	case "schedules":
		if c.opts.Schedules == nil {
			return "", nil
		}
		ss, err := c.opts.Schedules(ctx)
		if err != nil {
			return "", err
		}
		type row struct {
			Name string
			Last *protocol.ScheduleRun
		}
		rows := make([]row, 0, len(ss))
		for _, s := range ss {
			rows = append(rows, row{s.Name, s.LastRun})
		}
		v = rows
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), nil
}

// digestRow is what a workers digest keeps of a worker.
type digestRow struct {
	ID, Status string
	Load       int `json:",omitempty"`
	Reputation string
	Skills     []string
	Tasks      []string
}

// workerRows are the workers as an operator's or a client's page shows
// them, for a digest. A client's rows leave out the load too: it moves with
// every task of every client, so a client's stream would tell when another
// client's task starts or ends (the page shows the load as it was drawn).
func (c *Console) workerRows(ctx context.Context, admin bool) ([]digestRow, error) {
	ws, err := c.opts.Engine.ListWorkers(ctx)
	if err != nil {
		return nil, err
	}
	view := api.ClientWorkerView
	if admin {
		view = api.WorkerView
	}
	rows := make([]digestRow, 0, len(ws))
	for _, w := range ws {
		info := view(w)
		r := digestRow{ID: info.WorkerID, Status: info.Status, Reputation: strconv.FormatFloat(info.Reputation, 'f', 3, 64), Tasks: info.CurrentTasks}
		if admin {
			r.Load = info.Load
		}
		for _, sk := range info.Skills {
			r.Skills = append(r.Skills, sk.Name)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b digestRow) int { return strings.Compare(a.ID, b.ID) })
	return rows, nil
}
