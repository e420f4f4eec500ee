package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

type clientHandler func(w http.ResponseWriter, r *http.Request, cl *auth.Client)

// client authenticates an API client and applies its rate limit.
func (s *Server) client(h clientHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get(protocol.HeaderClientToken)
		if token == "" {
			writeError(w, http.StatusUnauthorized, "Missing X-Client-Token header")
			return
		}
		cl, ok := s.opts.Clients.Lookup(token)
		if !ok {
			writeError(w, http.StatusUnauthorized, "Unauthorized: Invalid token")
			return
		}
		if !s.allowClient(w, r, cl) {
			return
		}
		h(w, r, cl)
	})
}

// ownJob loads a job the client owns. Another client's job is answered
// exactly like a missing one.
func (s *Server) ownJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) (*store.Job, bool) {
	id := r.PathValue("id")
	if id == "" {
		id = r.PathValue("job_id")
	}
	j, err := s.eng.GetJob(r.Context(), id)
	if err == nil && j.Client.Name != cl.Name {
		err = engine.ErrJobNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return j, true
}

func (s *Server) createJob(bpName string) clientHandler {
	return func(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		req, err := parseCreateBody(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Invalid JSON body: %v", err)
			return
		}
		if req.WebhookURL != "" {
			if err := s.checkWebhookURL(req.WebhookURL); err != nil {
				writeError(w, http.StatusBadRequest, "invalid webhook_url: %v", err)
				return
			}
		}
		key := r.Header.Get(protocol.HeaderIdempotencyKey)
		if len(key) > maxIdempotencyKey {
			writeError(w, http.StatusBadRequest, "%s is longer than %d characters", protocol.HeaderIdempotencyKey, maxIdempotencyKey)
			return
		}
		if key != "" {
			// A repeat answers with the first job and is not charged.
			id, ok, err := s.eng.IdempotentJob(r.Context(), cl.Name, key)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if ok {
				s.replayed(w, id)
				return
			}
		}
		if !s.consumeQuota(w, r, cl) {
			return
		}
		j, err := s.eng.CreateJob(r.Context(), engine.NewJob{
			Blueprint: bpName, InitialData: req.InitialData, WebhookURL: req.WebhookURL, Policy: req.Policy,
			Client:         blueprint.Client{Name: cl.Name, Plan: cl.Plan, Params: cl.Params},
			IdempotencyKey: key,
		})
		var dup *engine.DuplicateError
		switch {
		case errors.As(err, &dup): // a concurrent repeat won
			s.refundQuota(r, cl)
			s.replayed(w, dup.JobID)
			return
		case err != nil:
			// With a key, a store failure may hide a job that was created:
			// the retry with the key finds it, uncharged, so the charge
			// stays. Without one, nothing to find: refund.
			if key == "" || !(errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
				s.refundQuota(r, cl)
			}
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, protocol.CreateJobResponse{Status: "accepted", JobID: j.ID})
	}
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// replayed answers a create repeated with an idempotency key: the first
// job, as accepted then.
func (s *Server) replayed(w http.ResponseWriter, jobID string) {
	w.Header().Set(protocol.HeaderIdempotentReplayed, "true")
	writeJSON(w, http.StatusAccepted, protocol.CreateJobResponse{Status: "accepted", JobID: jobID})
}

func (s *Server) checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("only http and https URLs are accepted, not %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	if u.User != nil {
		// It would be stored with the job and shown in its views (redacted
		// there, but still kept in the live store).
		return errors.New("user info (user:password@) is not accepted in a webhook URL: " +
			"authenticate deliveries by their X-Avtomatika-Signature header (WEBHOOK_SECRET) instead")
	}
	if s.opts.AllowWebhookURL != nil {
		return s.opts.AllowWebhookURL(raw)
	}
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	view, ok := s.ownJobView(w, r, cl)
	if !ok {
		return
	}
	fields := r.URL.Query().Get("fields")
	if fields == "" {
		writeJSON(w, http.StatusOK, view)
		return
	}
	writeJSON(w, http.StatusOK, selectFields(view, strings.Split(fields, ",")))
}

// ownJobView returns the client-API view of a job the client owns (see
// JobFor); it answers errors itself.
func (s *Server) ownJobView(w http.ResponseWriter, r *http.Request, cl *auth.Client) (protocol.Job, bool) {
	view, err := s.JobFor(r.Context(), cl.Name, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return protocol.Job{}, false
	}
	return view, true
}

// jobHistory lists a job's events, oldest first (owner only).
func (s *Server) jobHistory(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	if s.opts.History == nil {
		writeError(w, http.StatusNotImplemented, "history is disabled (HISTORY_DATABASE_URI)")
		return
	}
	events, err := s.JobEventsFor(r.Context(), cl.Name, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, events)
}

// selectFields keeps the requested keys of the job view, plus id.
func selectFields(view protocol.Job, fields []string) map[string]any {
	raw, _ := json.Marshal(view)
	var all map[string]any
	_ = json.Unmarshal(raw, &all)
	out := map[string]any{"id": view.ID}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out
}

// JobView is a job as the client API shows it: everything a client needs,
// none of the engine's bookkeeping, and the result only once the job ended.
// Secrets in the webhook URL are redacted (RedactURL); the live job keeps
// the URL as given, to deliver to it.
func JobView(j *store.Job) protocol.Job {
	created, updated := j.CreatedAt, j.UpdatedAt
	v := protocol.Job{
		ID: j.ID, Blueprint: j.Blueprint, Status: j.Status, CurrentState: j.CurrentState,
		Progress: j.Progress, ProgressMessage: j.ProgressMessage, ErrorMessage: j.ErrorMessage,
		InitialData: j.InitialData, StateHistory: j.StateHistory, Policy: j.Policy, Costs: j.Costs, ParentJobID: j.ParentJobID,
		ChildJobID: j.ChildJobID, Client: j.Client.Name, WebhookURL: RedactURL(j.WebhookURL),
		CreatedAt: &created, UpdatedAt: &updated, FinishedAt: j.FinishedAt,
	}
	if j.Status.Terminal() {
		v.Result = j.Result
	}
	if j.Approval != nil {
		v.Approval = &protocol.ApprovalInfo{Message: j.Approval.Message, Decisions: j.Approval.Decisions}
		if !j.Approval.ExpiresAt.IsZero() {
			at := j.Approval.ExpiresAt
			v.Approval.ExpiresAt = &at
		}
	}
	ids := make([]string, 0, len(j.Tasks))
	for id := range j.Tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		run := j.Tasks[id]
		ti := protocol.TaskInfo{ID: id, Type: run.Spec.Type, State: string(run.State), Attempt: run.Attempt,
			WorkerID: run.WorkerID, Strategy: run.Strategy, Priority: run.Spec.Priority}
		if d := run.Decision; d != nil {
			ti.Candidates, ti.Reason = d.Candidates, d.Reason
			if ti.WorkerID == "" {
				ti.WorkerID = d.WorkerID
			}
		}
		v.Tasks = append(v.Tasks, ti)
	}
	for _, d := range j.Dispatches {
		v.Dispatches = append(v.Dispatches, protocol.DispatchInfo{TaskID: d.TaskID, Type: d.Type, Attempt: d.Attempt,
			WorkerID: d.WorkerID, Strategy: d.Strategy, Candidates: d.Candidates, Reason: d.Reason, At: d.At})
	}
	return v
}

// fullJobView is JobView of a whole job (GET /api/v1/jobs/{id}): its
// lists are [] when empty, never absent or null. Job lists, whose jobs are
// headers, leave them out.
func fullJobView(j *store.Job) protocol.Job {
	v := JobView(j)
	if v.Tasks == nil {
		v.Tasks = []protocol.TaskInfo{}
	}
	if v.Dispatches == nil {
		v.Dispatches = []protocol.DispatchInfo{}
	}
	return v
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	q, err := ParseJobQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	out, err := s.findJobs(r, cl, q)
	if err != nil {
		s.failList(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// findJobs reads a page of a client's jobs (ListJobs, owned by cl).
func (s *Server) findJobs(r *http.Request, cl *auth.Client, q JobQuery) (protocol.JobList, error) {
	q.Owner = cl.Name
	return s.ListJobs(r.Context(), q)
}

// failList answers a failed findJobs.
func (s *Server) failList(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrInvalidQuery) {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.fail(w, r, err)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	j, ok := s.ownJob(w, r, cl)
	if !ok {
		return
	}
	_, err := s.eng.CancelJob(r.Context(), j.ID, "cancelled by client "+cl.Name)
	if errors.Is(err, engine.ErrJobTerminal) || errors.Is(err, engine.ErrJobNotFound) {
		writeError(w, http.StatusNotFound, "Job not found or already terminal.")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "cancellation_request_accepted"})
}

// retryJob runs a failed or quarantined job of the client again from the
// state it failed in (engine.RetryJob).
func (s *Server) retryJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	j, ok := s.ownJob(w, r, cl)
	if !ok {
		return
	}
	j, err := s.eng.RetryJob(r.Context(), j.ID, "client "+cl.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.RetryResponse{Status: "retry_accepted", JobID: j.ID, State: j.CurrentState})
}

func (s *Server) approveJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	j, ok := s.ownJob(w, r, cl)
	if !ok {
		return
	}
	s.approve(w, r, j.ID)
}

// publicApproval is the upstream-compatible approval webhook: with a
// pending approval's single-use token (query or body token) it needs no
// client token; otherwise the owner's client token is required. No quota
// is consumed.
func (s *Server) publicApproval(w http.ResponseWriter, r *http.Request) {
	req, ok := s.approvalRequest(w, r)
	if !ok {
		return
	}
	if token := cmp.Or(r.URL.Query().Get("token"), req.Token); token != "" {
		id := r.PathValue("job_id")
		if _, err := s.eng.ApproveWithToken(r.Context(), id, token, req.Decision); err != nil {
			if errors.Is(err, engine.ErrApprovalToken) {
				writeError(w, http.StatusForbidden, "Forbidden: %v", err)
				return
			}
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "approval_received", "job_id": id})
		return
	}
	token := r.Header.Get(protocol.HeaderClientToken)
	if token == "" {
		writeError(w, http.StatusUnauthorized, "Client authentication required")
		return
	}
	cl, ok := s.opts.Clients.Lookup(token)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Unauthorized: Invalid token")
		return
	}
	j, ok := s.ownJob(w, r, cl)
	if !ok {
		return
	}
	s.decide(w, r, j.ID, req)
}

// approvalRequest reads an approval body.
func (s *Server) approvalRequest(w http.ResponseWriter, r *http.Request) (protocol.ApprovalRequest, bool) {
	var req protocol.ApprovalRequest
	body, ok := s.readBody(w, r)
	if !ok || !decodeJSON(w, body, &req) {
		return req, false
	}
	if req.Decision == "" {
		writeError(w, http.StatusBadRequest, "decision is required in body")
		return req, false
	}
	return req, true
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, id string) {
	if req, ok := s.approvalRequest(w, r); ok {
		s.decide(w, r, id, req)
	}
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, id string, req protocol.ApprovalRequest) {
	if _, err := s.eng.Approve(r.Context(), id, req.Decision); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "approval_received", "job_id": id})
}

// listWorkers lists live workers: ClientWorkerView, or WorkerView when the
// request also carries the admin token.
func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request, _ *auth.Client) {
	admin, ok := s.adminRequest(w, r)
	if !ok {
		return
	}
	workers, err := s.eng.ListWorkers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	view := ClientWorkerView
	if admin {
		view = WorkerView
	}
	out := make([]protocol.WorkerInfo, len(workers))
	for i, wi := range workers {
		out[i] = view(wi)
	}
	writeJSON(w, http.StatusOK, out)
}

// WorkerView is a worker as operators (the admin token) see it: all it
// registered and reports, but no tokens, no signatures. Clients see
// ClientWorkerView.
func WorkerView(wi engine.WorkerInfo) protocol.WorkerInfo {
	v := protocol.WorkerInfo{
		WorkerID: wi.ID, WorkerType: wi.Type, Status: wi.Status, Skills: wi.Skills, HotSkills: wi.HotSkills,
		Resources: wi.Resources, InstalledSoftware: wi.InstalledSoftware, InstalledArtifacts: wi.InstalledArtifacts,
		Reputation: math.Round(wi.Reputation*1e4) / 1e4, Load: wi.Load, MaxConcurrent: wi.MaxConcurrent, CurrentTasks: wi.CurrentTasks,
		Usage: wi.Usage, RegisteredAt: wi.RegisteredAt, LastSeen: wi.LastSeen,
	}
	if c := wi.Capabilities; c != nil {
		v.CostPerSkill, v.Hostname = c.CostPerSkill, c.Hostname
	}
	return v
}

func (s *Server) listBlueprints(w http.ResponseWriter, _ *http.Request, _ *auth.Client) {
	bps := s.eng.Blueprints()
	out := make([]protocol.BlueprintInfo, 0, len(bps))
	for _, bp := range bps {
		info := protocol.BlueprintInfo{Name: bp.Name(), StartState: bp.StartState(), States: bp.States()}
		if v, p := bp.API(); p != "" {
			info.APIVersion, info.Endpoint = v, protocol.ClientPrefix+"/"+v+p
		}
		for _, st := range bp.States() {
			if _, end := bp.IsEnd(st); end {
				info.EndStates = append(info.EndStates, st)
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b protocol.BlueprintInfo) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) blueprintGraph(w http.ResponseWriter, r *http.Request, _ *auth.Client) {
	bp, ok := s.eng.Blueprint(r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, "Blueprint not found")
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "dot":
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		_, _ = w.Write([]byte(bp.DOT()))
	case "mermaid":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(bp.Mermaid()))
	default:
		writeError(w, http.StatusBadRequest, "unknown graph format %q: use dot or mermaid", f)
	}
}

// admin checks the admin token; it answers 403 itself.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.AdminToken == "" {
		writeError(w, http.StatusForbidden, "Forbidden: the admin API is disabled (set ADMIN_TOKEN)")
		return false
	}
	if !s.IsAdminToken(r.Header.Get(protocol.HeaderAdminToken)) {
		writeError(w, http.StatusForbidden, "Forbidden: invalid or missing X-Admin-Token")
		return false
	}
	return true
}

func (s *Server) adminJob(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	j, err := s.eng.GetJob(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fullJobView(j))
}

func (s *Server) adminSchedules(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	var out []protocol.ScheduleInfo
	if s.opts.Schedules != nil {
		var err error
		if out, err = s.opts.Schedules(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if out == nil {
		out = []protocol.ScheduleInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminReload(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reloading is not configured")
		return
	}
	clients, workers, err := s.opts.Reload()
	if err != nil {
		writeError(w, http.StatusBadRequest, "reload failed, the previous configuration stays: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "clients": clients, "workers": workers})
}

// errHistoryUnavailable marks a history read that failed or took too long.
var errHistoryUnavailable = errors.New("history database unavailable")

// historyContext bounds a history read.
func (s *Server) historyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cmp.Or(s.opts.HistoryTimeout, 5*time.Second))
}

// historyFailed tells a failed history read (503) from a client that went
// away.
func historyFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", errHistoryUnavailable, err)
}

// flushHistory waits, for at most half of the read's time, until history
// holds the events committed so far; past that the read shows what history
// has (a consumer that lags must not make reads hang).
func (s *Server) flushHistory(ctx context.Context) {
	if s.opts.FlushHistory == nil {
		return
	}
	deadline, _ := ctx.Deadline()
	fctx, cancel := context.WithTimeout(ctx, time.Until(deadline)/2)
	defer cancel()
	if err := s.opts.FlushHistory(fctx); err != nil && ctx.Err() == nil {
		s.log.Debug("history lags behind the live state", "error", err)
	}
}
