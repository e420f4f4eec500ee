package console

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/internal/figures"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// statuses are the job statuses, in the order the console lists them.
var statuses = []protocol.JobStatus{
	protocol.StatusPending, protocol.StatusRunning, protocol.StatusWaitingForWorker, protocol.StatusWaitingForHuman,
	protocol.StatusWaitingParallel, protocol.StatusWaitingForSubJob, protocol.StatusFinished, protocol.StatusFailed,
	protocol.StatusCancelled, protocol.StatusError, protocol.StatusQuarantined,
}

// jobFilter is the jobs list's filter, kept in the URL. From and To are
// as the form sends them (a datetime-local value, UTC, or RFC 3339).
type jobFilter struct {
	Status, Blueprint, Q, Cursor string
	From, To                     string
	from, to                     time.Time
}

// timeLayouts are the forms a time of the filter may take.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

func parseTime(name, v string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: %q is no time such as 2026-12-03T15:04 (UTC)", name, v)
}

func filterOf(q url.Values) (jobFilter, error) {
	f := jobFilter{Status: q.Get("status"), Blueprint: q.Get("blueprint"), Q: strings.TrimSpace(q.Get("q")), Cursor: q.Get("cursor"),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	if f.Status != "" && !slices.Contains(statuses, protocol.JobStatus(f.Status)) {
		return f, errors.New("unknown status " + f.Status)
	}
	if len(f.Q) > 200 {
		return f, errors.New("the id text is longer than 200 characters")
	}
	var err error
	if f.From != "" {
		if f.from, err = parseTime("from", f.From); err != nil {
			return f, err
		}
	}
	if f.To != "" {
		if f.to, err = parseTime("to", f.To); err != nil {
			return f, err
		}
	}
	return f, nil
}

// Link is the jobs list's URL for f with another status and cursor.
func (f jobFilter) Link(status, cursor string) string { return f.link(status, cursor, "") }

// Self is the URL of f itself (first page).
func (f jobFilter) Self() string { return f.link(f.Status, "", "") }

// Table is the URL of f's first page as the table fragment (live reload).
func (f jobFilter) Table() string { return f.link(f.Status, "", "table") }

// Counts is the URL of f's counts by status (the page loads them after
// itself, and again on each change of its live stream).
func (f jobFilter) Counts() string { return f.at("jobs/counts", f.Status, "", "") }

func (f jobFilter) link(status, cursor, fragment string) string {
	return f.at("jobs", status, cursor, fragment)
}

func (f jobFilter) at(page, status, cursor, fragment string) string {
	q := url.Values{}
	for k, v := range map[string]string{"status": status, "blueprint": f.Blueprint, "q": f.Q, "from": f.From, "to": f.To, "cursor": cursor, "fragment": fragment} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return Prefix + page
	}
	return Prefix + page + "?" + q.Encode()
}

// query is the listing of f for the viewer; unfinished statuses without a
// time range come from the live store (api.JobQuery.Live).
func (f jobFilter) query(v *viewer, limit int) api.JobQuery {
	return api.JobQuery{Owner: v.owner(), Status: f.Status, Blueprint: f.Blueprint, From: f.from, To: f.to, Limit: limit, Cursor: f.Cursor,
		Live: unfinished(f.Status) && f.from.IsZero() && f.to.IsZero()}
}

// pageSize is the jobs list's page; scanCap bounds the jobs read to find
// those whose id contains the text, and countCap the jobs counted per
// status ("500+").
const (
	pageSize = 50
	scanCap  = 5000
	countCap = 500
)

// listJobs reads a page of the viewer's jobs. With id text, it reads pages
// of the listing and keeps the jobs whose id contains it, until a page is
// full or scanCap jobs were read.
func (c *Console) listJobs(ctx context.Context, v *viewer, f jobFilter) (protocol.JobList, error) {
	q := f.query(v, pageSize)
	if f.Q == "" {
		return c.opts.API.ListJobs(ctx, q)
	}
	out := protocol.JobList{Jobs: []protocol.Job{}}
	q.Limit = 500
	for read := 0; read < scanCap; {
		page, err := c.opts.API.ListJobs(ctx, q)
		if err != nil {
			return out, err
		}
		read += len(page.Jobs)
		for _, j := range page.Jobs {
			if strings.Contains(j.ID, f.Q) {
				out.Jobs = append(out.Jobs, j)
			}
		}
		out.NextCursor = page.NextCursor
		if page.NextCursor == "" || len(out.Jobs) >= pageSize {
			break
		}
		q.Cursor = page.NextCursor
	}
	return out, nil
}

// current replaces the unfinished jobs of a page read from history with
// their live view: history's summary of a job may lag behind it.
func (c *Console) current(ctx context.Context, v *viewer, jobs []protocol.Job) {
	if !c.opts.API.HistoryEnabled() {
		return
	}
	for i, j := range jobs {
		if j.Status.Terminal() {
			continue
		}
		if live, err := c.opts.API.JobFor(ctx, v.owner(), j.ID); err == nil {
			jobs[i] = live
		}
	}
}

// statusCount is the number of the viewer's jobs in one status.
type statusCount struct {
	Status protocol.JobStatus
	N      int
	More   bool // at least countCap
}

func (c *Console) counts(ctx context.Context, v *viewer, f jobFilter) ([]statusCount, error) {
	out := make([]statusCount, 0, len(statuses))
	for _, s := range statuses {
		g := f
		g.Status, g.Cursor = string(s), ""
		page, err := c.opts.API.ListJobs(ctx, g.query(v, countCap))
		if err != nil {
			return nil, err
		}
		out = append(out, statusCount{Status: s, N: len(page.Jobs), More: page.NextCursor != ""})
	}
	return out, nil
}

func (c *Console) blueprintNames() []string {
	var names []string
	for _, bp := range c.opts.Engine.Blueprints() {
		names = append(names, bp.Name())
	}
	sort.Strings(names)
	return names
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request, v *viewer) {
	f, err := filterOf(r.URL.Query())
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Bad request", "Message": err.Error()})
		return
	}
	list, err := c.listJobs(r.Context(), v, f)
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.current(r.Context(), v, list.Jobs)
	data := map[string]any{"Filter": f, "Jobs": list.Jobs, "Next": list.NextCursor, "Statuses": statuses, "Blueprints": c.blueprintNames(),
		"History": c.opts.API.HistoryEnabled()}
	if r.URL.Query().Get("fragment") == "table" {
		data["Fragment"] = "jobtable"
	}
	c.render(w, r, http.StatusOK, "jobs", v, data)
}

// jobCounts serves the counts by status of the jobs list's filter, which
// the page loads after itself and reloads live (paced, data-pace): with a history database they read up to
// countCap jobs per status.
func (c *Console) jobCounts(w http.ResponseWriter, r *http.Request, v *viewer) {
	f, err := filterOf(r.URL.Query())
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Bad request", "Message": err.Error()})
		return
	}
	counts, err := c.counts(r.Context(), v, f)
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	c.render(w, r, http.StatusOK, "jobs", v, map[string]any{"Fragment": "counts", "Filter": f, "Counts": counts})
}

// attempt is one try of a task, from the job's audit trail.
type attempt struct {
	TaskID, Type        string
	N                   int
	WorkerID            string
	Strategy, Reason    string
	Candidates          int
	Dispatched, Started time.Time
	Ended               time.Time
	Status, Error       string
	RanFor              float64
	Price               string
	Branch              bool // a fan-out branch's (engine's "branch" mark)
}

// branch is one fan-out branch of a job, as its attempts tell it: the
// latest attempt's worker, status and error.
type branch struct {
	TaskID, Type, WorkerID, Status, Error string
	Attempts                              int
	RanFor                                float64
}

// liveBranches lists a running fan-out's branches from the live job: the
// ended ones with their result, then those outstanding, each in id order.
func liveBranches(j *store.Job) []*branch {
	var out []*branch
	for _, id := range slices.Sorted(maps.Keys(j.BranchResults)) {
		r := j.BranchResults[id]
		b := &branch{TaskID: id, Type: r.Type, WorkerID: r.WorkerID, Status: r.Status}
		if r.Error != nil {
			b.Error = strings.TrimSpace(r.Error.Code + ": " + r.Error.Message)
		}
		out = append(out, b)
	}
	for _, id := range slices.Sorted(maps.Keys(j.Tasks)) {
		if t := j.Tasks[id]; t.Branch {
			out = append(out, &branch{TaskID: id, Type: t.Spec.Type, WorkerID: t.WorkerID, Status: string(t.State), Attempts: t.Attempt})
		}
	}
	return out
}

// branches folds the attempts of the job's fan-out branches into one row
// per branch, in the order they were dispatched.
func branches(attempts []*attempt) []*branch {
	var out []*branch
	byTask := map[string]*branch{}
	for _, a := range attempts {
		if !a.Branch {
			continue
		}
		b := byTask[a.TaskID]
		if b == nil {
			b = &branch{TaskID: a.TaskID}
			byTask[a.TaskID] = b
			out = append(out, b)
		}
		b.Attempts++
		b.Type, b.WorkerID, b.Status, b.Error, b.RanFor = a.Type, a.WorkerID, a.Status, a.Error, a.RanFor
	}
	return out
}

// Decision is the dispatch decision as one line: the strategy, then the
// reason, which most strategies already begin with ("cheapest: price 1"),
// so it is not said twice.
func (a *attempt) Decision() string {
	words := strings.ReplaceAll(a.Strategy, "_", " ")
	switch {
	case a.Reason == "":
		return a.Strategy
	case a.Strategy == "" || strings.HasPrefix(a.Reason, words+":"):
		return a.Reason
	}
	return a.Strategy + ": " + a.Reason
}

// attempts gathers a job's task attempts from its events: dispatch
// decision, pick-up, result or retry, and the worker's price for the skill.
func attempts(events []history.Event, prices map[string]map[string]float64) []*attempt {
	var out []*attempt
	byKey := map[string]*attempt{}
	get := func(ev history.Event) *attempt {
		n := ev.Attempt
		if f, ok := ev.Detail["attempt"].(float64); ok && n == 0 {
			n = int(f)
			// A retry carries the attempt it schedules: its error and
			// worker belong to the one before.
			if engine.EventType(ev.Type) == engine.EventTaskRetry && n > 1 {
				n--
			}
		}
		key := ev.TaskID + "/" + strconv.Itoa(n)
		a := byKey[key]
		if a == nil {
			a = &attempt{TaskID: ev.TaskID, N: n}
			byKey[key] = a
			out = append(out, a)
		}
		if t, ok := ev.Detail["type"].(string); ok && a.Type == "" {
			a.Type = t
		}
		if ev.WorkerID != "" {
			a.WorkerID = ev.WorkerID
		}
		if b, _ := ev.Detail["branch"].(bool); b {
			a.Branch = true
		}
		return a
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	for _, ev := range events {
		if ev.TaskID == "" {
			continue
		}
		switch engine.EventType(ev.Type) {
		case engine.EventTaskDispatched, engine.EventTaskWaiting:
			a := get(ev)
			a.Dispatched, a.Strategy, a.Reason = ev.Time, str(ev.Detail, "strategy"), str(ev.Detail, "reason")
			if n, ok := ev.Detail["candidates"].(float64); ok {
				a.Candidates = int(n)
			}
			if a.Status == "" {
				a.Status = "queued"
			}
		case engine.EventTaskStarted:
			a := get(ev)
			a.Started, a.Status = ev.Time, "running"
		case engine.EventTaskResult:
			a := get(ev)
			a.Ended, a.Status = ev.Time, str(ev.Detail, "status")
			a.RanFor, _ = ev.Detail["ran_for"].(float64)
			if e, ok := ev.Detail["error"].(map[string]any); ok {
				a.Error = strings.TrimSpace(str(e, "code") + ": " + str(e, "message"))
			}
		case engine.EventTaskRetry:
			a := get(ev)
			if a.Error == "" {
				a.Error = strings.TrimSpace(str(ev.Detail, "code") + ": " + str(ev.Detail, "message"))
			}
			if a.Status == "" || a.Status == "running" || a.Status == "queued" {
				a.Status = "retry"
			}
		case engine.EventTaskTimeout:
			a := get(ev)
			a.Ended, a.Status, a.Error = ev.Time, "timeout", str(ev.Detail, "kind")+" timeout"
		}
	}
	for _, a := range out {
		if p, ok := prices[a.WorkerID][a.Type]; ok {
			a.Price = strconv.FormatFloat(p, 'f', -1, 64)
		}
	}
	return out
}

func (c *Console) job(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := r.Context()
	view, err := c.opts.API.JobFor(ctx, v.owner(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	data := map[string]any{"Job": view, "History": c.opts.API.HistoryEnabled()}
	events, err := c.opts.API.JobEventsFor(ctx, v.owner(), view.ID)
	if err != nil {
		c.opts.Logger.Warn("console: job events unavailable", "job_id", view.ID, "error", err)
		data["EventsError"] = "The audit trail is unavailable right now."
	}
	prices := map[string]map[string]float64{}
	if ws, err := c.opts.Engine.ListWorkers(ctx); err == nil {
		for _, wi := range ws {
			if wi.Capabilities != nil {
				prices[wi.ID] = wi.Capabilities.CostPerSkill
			}
		}
	}
	data["Children"] = childJobs(view, events)
	tries := attempts(events, prices)
	data["Events"], data["Attempts"], data["Webhooks"], data["Branches"] = events, tries, webhookLog(events), branches(tries)
	if view.Status == protocol.StatusWaitingParallel {
		// The header's counters: how far the fan-out is, while it runs.
		// Without an audit trail (no history database) the branches come
		// from the live job itself, read whole.
		load := c.opts.Engine.Store().LoadJob
		if len(events) == 0 {
			load = func(ctx context.Context, id string, _ ...string) (*store.Job, error) {
				return c.opts.Engine.Store().GetJob(ctx, id)
			}
		}
		if sj, err := load(ctx, view.ID); err == nil {
			if sj.BranchesLeft+sj.BranchesDone > 0 {
				data["BranchesDone"], data["BranchesLeft"] = sj.BranchesDone, sj.BranchesLeft
			}
			if len(events) == 0 {
				data["Branches"] = liveBranches(sj)
			}
		}
	}
	data["States"], data["Path"] = c.states(view, events)
	if bp, ok := c.opts.Engine.Blueprint(view.Blueprint); ok && c.graph != nil {
		path, _ := data["Path"].([]string)
		if svg, err := c.graph.svg(ctx, bp.DOTPath(path, view.CurrentState)); err == nil {
			data["Graph"] = svg
		} else {
			c.opts.Logger.Warn("console: blueprint graph unavailable", "blueprint", view.Blueprint, "error", err)
		}
	}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "jobpanel"
	}
	c.render(w, r, http.StatusOK, "job", v, data)
}

// childJob is a sub-job a job started, and how it ended (empty while it
// runs).
type childJob struct{ ID, Status string }

// childJobs lists every sub-job j started: the running one (ChildJobID,
// cleared once it ends) and those whose outcome the engine kept in the
// state history ("sub_job_<id>_result"), oldest first by the events that
// created them where the audit trail has them.
func childJobs(j protocol.Job, events []history.Event) []childJob {
	var out []childJob
	seen := map[string]int{}
	add := func(id, status string) {
		if i, ok := seen[id]; ok {
			if out[i].Status == "" {
				out[i].Status = status
			}
			return
		}
		seen[id] = len(out)
		out = append(out, childJob{ID: id, Status: status})
	}
	for _, ev := range events {
		if engine.EventType(ev.Type) == engine.EventJobCreated && ev.JobID != j.ID {
			if p, _ := ev.Detail["parent_job_id"].(string); p == j.ID {
				add(ev.JobID, "")
			}
		}
	}
	var ended []string
	for k := range j.StateHistory {
		if id, ok := strings.CutPrefix(k, "sub_job_"); ok {
			if id, ok = strings.CutSuffix(id, "_result"); ok && uuid.Validate(id) == nil {
				ended = append(ended, id)
			}
		}
	}
	sort.Strings(ended)
	for _, id := range ended {
		status := "ended"
		if m, ok := j.StateHistory["sub_job_"+id+"_result"].(map[string]any); ok {
			if s, ok := m["status"].(string); ok && s != "" {
				status = s
			}
		}
		add(id, status)
	}
	if j.ChildJobID != "" {
		add(j.ChildJobID, "")
	}
	return out
}

// stateInfo is a state of a job's blueprint, as the job page lists them.
type stateInfo struct {
	Name                  string
	End, Visited, Current bool
}

// states lists the states of the job's blueprint in their declared order,
// marking those the job entered (from its audit trail) and the current
// one, and returns the path taken.
func (c *Console) states(j protocol.Job, events []history.Event) ([]stateInfo, []string) {
	bp, ok := c.opts.Engine.Blueprint(j.Blueprint)
	if !ok {
		return nil, nil
	}
	var path []string
	visited := map[string]bool{}
	for _, ev := range events {
		typ := engine.EventType(ev.Type)
		entered := typ == engine.EventStateEntered || typ == engine.EventJobRetried || (typ == engine.EventJobCreated && ev.JobID == j.ID)
		if entered && ev.State != "" &&
			(len(path) == 0 || path[len(path)-1] != ev.State) {
			path = append(path, ev.State)
			visited[ev.State] = true
		}
	}
	var out []stateInfo
	for _, name := range bp.States() {
		_, end := bp.IsEnd(name)
		out = append(out, stateInfo{Name: name, End: end, Visited: visited[name], Current: name == j.CurrentState})
	}
	return out, path
}

// consoleReason records who acted, in the job's audit trail.
func consoleReason(v *viewer) string { return "cancelled in the console by " + v.Name }

func (c *Console) cancel(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, err := c.opts.API.JobFor(r.Context(), v.owner(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	if _, err := c.opts.Engine.CancelJob(r.Context(), view.ID, consoleReason(v)); err != nil {
		if errors.Is(err, engine.ErrJobTerminal) {
			c.render(w, r, http.StatusConflict, "message", v, map[string]any{"Title": "Not cancelled", "Message": "The job has already ended.", "Back": Prefix + "jobs/" + view.ID})
			return
		}
		c.fail(w, r, v, err)
		return
	}
	http.Redirect(w, r, Prefix+"jobs/"+url.PathEscape(view.ID), http.StatusSeeOther)
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, err := c.opts.API.JobFor(r.Context(), v.owner(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	decision := r.PostForm.Get("decision")
	if decision == "" {
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "No decision", "Message": "Choose a decision.", "Back": Prefix + "jobs/" + view.ID})
		return
	}
	if _, err := c.opts.Engine.Approve(r.Context(), view.ID, decision); err != nil {
		switch {
		case errors.Is(err, engine.ErrNotAwaitingHuman):
			c.render(w, r, http.StatusConflict, "message", v, map[string]any{"Title": "Not applied", "Message": "The job is not waiting for a decision.", "Back": Prefix + "jobs/" + view.ID})
		case errors.Is(err, engine.ErrInvalidDecision):
			c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Not applied", "Message": err.Error(), "Back": Prefix + "jobs/" + view.ID})
		default:
			c.fail(w, r, v, err)
		}
		return
	}
	http.Redirect(w, r, Prefix+"jobs/"+url.PathEscape(view.ID), http.StatusSeeOther)
}

// unfinished reports whether a status filter selects unfinished jobs only:
// those the live store lists with their current status (api.JobQuery.Live).
func unfinished(status string) bool {
	return status != "" && !protocol.JobStatus(status).Terminal()
}

// bulkMax bounds the jobs one bulk action touches.
const bulkMax = 10000

// bulkOp is an action on every job of a filter (bulk cancel, bulk retry):
// the first POST shows how many jobs it touches, the second (confirm)
// acts on each of them.
type bulkOp struct {
	Verb   string // "Cancel": the confirmation's title and button
	Action string // the form's URL
	Which  string // which jobs of the filter, e.g. "unfinished"
	Danger bool   // the button warns
	Note   string // more on the confirmation, if any
	// statuses are the statuses to list for the filter's status (a
	// single "" lists them all); keep picks the jobs acted on.
	statuses func(status string) []string
	keep     func(protocol.JobStatus) bool
	// act acts on one job; an error that skipped says changed meanwhile
	// (the job is left as it is) is counted and reported, any other ends
	// the action.
	act     func(ctx context.Context, id string) error
	skipped func(error) bool
	// done words the outcome: acted on n jobs, skipped m, why the first
	// skipped one was.
	done func(n, m int, why error) string
}

// bulkJobs lists the ids of the viewer's jobs that match f and op (all
// pages, up to bulkMax). Without a time range they come from the live
// store, which holds every job an action can still change.
func (c *Console) bulkJobs(ctx context.Context, v *viewer, f jobFilter, op *bulkOp) ([]string, error) {
	var ids []string
	for _, status := range op.statuses(f.Status) {
		g := f
		g.Status = status
		q := g.query(v, 500)
		q.Live = f.from.IsZero() && f.to.IsZero()
		for len(ids) < bulkMax {
			page, err := c.opts.API.ListJobs(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, j := range page.Jobs {
				if op.keep(j.Status) && (f.Q == "" || strings.Contains(j.ID, f.Q)) && len(ids) < bulkMax {
					ids = append(ids, j.ID)
				}
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
	}
	return ids, nil
}

// bulk runs op on the viewer's jobs that match the posted filter, once the
// confirmation (which shows how many they are) is posted back.
func (c *Console) bulk(w http.ResponseWriter, r *http.Request, v *viewer, op *bulkOp) {
	f, err := filterOf(r.PostForm)
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Bad request", "Message": err.Error()})
		return
	}
	f.Cursor = ""
	ids, err := c.bulkJobs(r.Context(), v, f, op)
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	if r.PostForm.Get("confirm") == "" {
		c.render(w, r, http.StatusOK, "confirm", v, map[string]any{"Filter": f, "N": len(ids), "Max": bulkMax, "Op": op})
		return
	}
	acted, skipped := 0, 0
	var why error
	for _, id := range ids {
		err := op.act(r.Context(), id)
		switch {
		case err == nil:
			acted++
		case op.skipped(err):
			skipped++
			if why == nil {
				why = err
			}
		default:
			c.fail(w, r, v, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "message", v, map[string]any{"Title": op.Verb + " jobs",
		"Message": op.done(acted, skipped, why), "Back": "query", "Filter": f})
}

// cancelOp cancels the unfinished jobs of a filter.
func (c *Console) cancelOp(v *viewer) *bulkOp {
	return &bulkOp{Verb: "Cancel", Action: Prefix + "jobs/cancel", Which: "unfinished", Danger: true,
		statuses: func(s string) []string { return []string{s} },
		keep:     func(s protocol.JobStatus) bool { return !s.Terminal() },
		act: func(ctx context.Context, id string) error {
			_, err := c.opts.Engine.CancelJob(ctx, id, consoleReason(v))
			return err
		},
		skipped: func(err error) bool {
			return errors.Is(err, engine.ErrJobTerminal) || errors.Is(err, engine.ErrJobNotFound)
		},
		done: func(n, m int, _ error) string {
			return fmt.Sprintf("%d jobs cancelled (%d had ended meanwhile).", n, m)
		},
	}
}

func (c *Console) bulkCancel(w http.ResponseWriter, r *http.Request, v *viewer) {
	c.bulk(w, r, v, c.cancelOp(v))
}

func (c *Console) workers(w http.ResponseWriter, r *http.Request, v *viewer) {
	ws, err := c.opts.Engine.ListWorkers(r.Context())
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	view := api.ClientWorkerView
	if v.Admin {
		view = api.WorkerView
	}
	out := make([]protocol.WorkerInfo, len(ws))
	for i, wi := range ws {
		out[i] = view(wi)
	}
	slices.SortFunc(out, func(a, b protocol.WorkerInfo) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	data := map[string]any{"Workers": out, "Topic": workersTopic(v)}
	if v.Admin {
		// Task types that no worker has taken yet, and why (queues span
		// every client's tasks: operators only).
		waiting, err := c.waitingQueues(r.Context())
		if err != nil {
			c.fail(w, r, v, err)
			return
		}
		data["Waiting"] = waiting
	}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "workerspanel"
	}
	c.render(w, r, http.StatusOK, "workers", v, data)
}

// waitingQueues are the queues of tasks no worker has taken yet.
func (c *Console) waitingQueues(ctx context.Context) ([]queueInfo, error) {
	return c.queueHeads(ctx, func(name string) bool { return strings.HasPrefix(name, store.PendingQueue("")) })
}

// queueInfo is one task queue: its length and oldest waiting task, and
// why that task waits (its dispatch decision's reason, as the job's
// outstanding tasks show it).
type queueInfo struct {
	Name   string
	Depth  int
	Oldest *time.Time
	JobID  string
	Why    string
}

// waitReason is why a queued task waits: the reason of its job's current
// decision for it (the job may have placed it again since it was queued),
// else that of the queued copy.
func (c *Console) waitReason(ctx context.Context, qt store.QueuedTask) string {
	if j, err := c.opts.API.JobFor(ctx, api.AnyOwner, qt.JobID); err == nil {
		for _, t := range j.Tasks {
			if t.ID == qt.Run.ID && t.Reason != "" {
				return t.Reason
			}
		}
	}
	if d := qt.Run.Decision; d != nil {
		return d.Reason
	}
	return ""
}

// queueHeads lists the queues that keep (by name), each with its length
// and its oldest task, and why that task waits; by name.
func (c *Console) queueHeads(ctx context.Context, keep func(name string) bool) ([]queueInfo, error) {
	st := c.opts.Engine.Store()
	lengths, err := st.QueueLengths(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queueInfo, 0, len(lengths))
	for name, n := range lengths {
		if !keep(name) {
			continue
		}
		q := queueInfo{Name: name, Depth: n}
		if ts, err := st.PeekTasks(ctx, name, 1); err == nil && len(ts) > 0 {
			at := ts[0].Run.QueuedAt
			q.Oldest, q.JobID, q.Why = &at, ts[0].JobID, c.waitReason(ctx, ts[0])
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b queueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Console) queues(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !v.Admin {
		c.render(w, r, http.StatusForbidden, "message", v, map[string]any{"Title": "Operators only", "Message": "Queues span every client's tasks: log in with the admin token."})
		return
	}
	st := c.opts.Engine.Store()
	out, err := c.queueHeads(r.Context(), func(string) bool { return true })
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	minutes, err := figures.LastHour(r.Context(), st, time.Now())
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	jobs, latency := hourCharts(minutes)
	data := map[string]any{"Queues": out, "Jobs": jobs, "Latency": latency, "Hour": totals(minutes)}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "queuespanel"
	}
	c.render(w, r, http.StatusOK, "queues", v, data)
}

func (c *Console) schedules(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !v.Admin {
		c.render(w, r, http.StatusForbidden, "message", v, map[string]any{"Title": "Operators only", "Message": "Scheduled jobs belong to the scheduler: log in with the admin token."})
		return
	}
	var out []protocol.ScheduleInfo
	if c.opts.Schedules != nil {
		var err error
		if out, err = c.opts.Schedules(r.Context()); err != nil {
			c.fail(w, r, v, err)
			return
		}
	}
	data := map[string]any{"Schedules": out}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "schedulespanel"
	}
	c.render(w, r, http.StatusOK, "schedules", v, data)
}
