package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

var identRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidID reports whether s is a valid worker id, skill name or type.
func ValidID(s string) bool { return identRE.MatchString(s) }

// RegisterWorker adds or replaces a worker record. Its reputation, kept
// apart from the record, survives re-registration.
func (e *Engine) RegisterWorker(ctx context.Context, reg protocol.Registration) (*store.Worker, error) {
	if !ValidID(reg.WorkerID) {
		return nil, fmt.Errorf("%w: invalid worker_id %q: must match %s", ErrInvalidInput, reg.WorkerID, identRE)
	}
	for _, s := range reg.SupportedSkills {
		if !ValidID(s.Name) || (s.Type != "" && !ValidID(s.Type)) {
			return nil, fmt.Errorf("%w: invalid skill name or type %q/%q", ErrInvalidInput, s.Name, s.Type)
		}
	}
	now := e.now()
	w := &store.Worker{
		ID: reg.WorkerID, Type: reg.WorkerType, Skills: reg.SupportedSkills,
		AvailableSkills: reg.AvailableSkills, HotSkills: reg.HotSkills, Resources: reg.Resources,
		InstalledSoftware: reg.InstalledSoftware, InstalledArtifacts: reg.InstalledArtifacts,
		Capabilities: reg.Capabilities, SkillsHash: reg.SkillsHash, Status: protocol.WorkerIdle,
		Metadata: reg.Metadata, RegisteredAt: now, LastSeen: now,
	}
	if reg.Capabilities != nil {
		if n, ok := reg.Capabilities.Extra["max_concurrent_tasks"].(float64); ok && n >= 1 && n == math.Trunc(n) {
			w.MaxConcurrent = int(n)
		}
	}
	prev, err := e.store.GetWorker(ctx, w.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	if err := e.store.PutWorker(ctx, w, e.cfg.WorkerTTL); err != nil {
		return nil, fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	e.pollers.put(w)
	e.roster.invalidate()
	e.publish(ctx, Event{Type: EventWorkerRegistered, Time: now, WorkerID: w.ID,
		Detail: map[string]any{"skills": len(w.Skills), "worker_type": w.Type}})
	if prev != nil && restarted(prev, w) {
		// A new run of the worker holds none of the tasks the old one ran.
		running, err := e.store.RunningTasks(ctx, w.ID)
		if err != nil {
			e.log.Error("list running tasks", "worker_id", w.ID, "error", err)
		}
		for _, qt := range running {
			e.loseTask(ctx, w.ID, qt, true, 0, fmt.Sprintf("worker %s restarted while running the task", w.ID))
		}
	}
	return w, nil
}

// restarted tells a worker that registers as a new run (its session id,
// which our SDK sends in the registration's metadata, changed) from one
// that registers again in the same run (after an orchestrator forgot it).
func restarted(prev, cur *store.Worker) bool {
	was, _ := prev.Metadata["session"].(string)
	is, _ := cur.Metadata["session"].(string)
	return was != "" && is != "" && was != is
}

// Heartbeat refreshes a worker: its TTL always, and its status, usage and
// skills when hb is not nil. A worker the orchestrator does not know (never
// registered, or expired) gets ErrUnknownWorker and must register again.
// The response lists running tasks the worker should stop because they are
// no longer its own (cancelled, timed out, reassigned).
func (e *Engine) Heartbeat(ctx context.Context, workerID string, hb *protocol.Heartbeat) (protocol.HeartbeatResponse, error) {
	if hb == nil {
		ok, err := e.store.TouchWorker(ctx, workerID, e.cfg.WorkerTTL)
		if err != nil {
			return protocol.HeartbeatResponse{}, err
		}
		if !ok {
			return protocol.HeartbeatResponse{}, fmt.Errorf("%w: %s", ErrUnknownWorker, workerID)
		}
		return protocol.HeartbeatResponse{Status: "ttl_refreshed"}, nil
	}
	if hb.WorkerID != "" && hb.WorkerID != workerID {
		return protocol.HeartbeatResponse{}, fmt.Errorf("%w: heartbeat for %q sent as %q", ErrWorkerIDMismatch, hb.WorkerID, workerID)
	}
	w, err := e.store.GetWorker(ctx, workerID)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.HeartbeatResponse{}, fmt.Errorf("%w: %s", ErrUnknownWorker, workerID)
	}
	if err != nil {
		return protocol.HeartbeatResponse{}, err
	}
	resp := protocol.HeartbeatResponse{Status: "ok"}
	if hb.Status != "" {
		w.Status = hb.Status
	}
	w.Usage = hb.Usage
	w.CurrentTasks = hb.CurrentTasks
	w.AvailableSkills = hb.AvailableSkills
	w.HotSkills = hb.HotSkills
	if hb.Metadata != nil {
		w.Metadata = hb.Metadata
	}
	switch {
	case len(hb.SupportedSkills) > 0:
		w.Skills, w.SkillsHash = hb.SupportedSkills, hb.SkillsHash
	case hb.SkillsHash != "" && hb.SkillsHash != w.SkillsHash:
		resp.RequireFullSync = true // skills changed but were not sent
	case hb.SkillsHash != "" && len(w.Skills) == 0:
		resp.RequireFullSync = true
	}
	w.LastSeen = e.now()
	if err := e.store.PutWorker(ctx, w, e.cfg.WorkerTTL); err != nil {
		return protocol.HeartbeatResponse{}, err
	}
	e.pollers.put(w)
	e.roster.invalidate()
	// A heartbeat that lists the worker's tasks (an empty list too) is
	// checked against what the orchestrator thinks it runs, both ways.
	if hb.CurrentTasks != nil {
		running, err := e.store.RunningTasks(ctx, workerID)
		if err != nil {
			return protocol.HeartbeatResponse{}, err
		}
		mine := map[string]bool{}
		for _, qt := range running {
			mine[qt.Run.ID] = true
		}
		for _, id := range hb.CurrentTasks {
			if !mine[id] {
				resp.CancelTaskIDs = append(resp.CancelTaskIDs, id)
			}
		}
		for _, qt := range running {
			if !slices.Contains(hb.CurrentTasks, qt.Run.ID) {
				// Lost (a restart, a crash of the handler), unless it was
				// picked up too recently to be listed yet.
				e.loseTask(ctx, workerID, qt, true, e.cfg.LostTaskGrace,
					fmt.Sprintf("worker %s no longer runs the task (its heartbeat does not list it)", workerID))
			}
		}
	}
	if hb.Status == protocol.WorkerOffline {
		// A worker shutting down keeps running what it has, but what waits
		// in its queue goes elsewhere now.
		e.requeueQueued(ctx, workerID)
	}
	return resp, nil
}

func (e *Engine) requeueQueued(ctx context.Context, workerID string) {
	queued, err := e.store.PeekTasks(ctx, store.WorkerQueue(workerID), 10000)
	if err != nil {
		e.log.Error("list queued tasks", "worker_id", workerID, "error", err)
		return
	}
	for _, qt := range queued {
		tm := store.Timer{JobID: qt.JobID, Ref: qt.Run.ID, Seq: qt.Run.Attempt}
		_, err := e.onTask(ctx, tm, store.TaskQueued, func(t *txn, j *store.Job, run *store.TaskRun) error {
			if !slices.Contains(run.Excluded, workerID) {
				run.Excluded = append(run.Excluded, workerID)
			}
			return e.place(ctx, t, j, run)
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Error("re-place queued task", "worker_id", workerID, "task_id", qt.Run.ID, "error", err)
		}
	}
}

// WorkerInfo is a worker with its live figures.
type WorkerInfo struct {
	*store.Worker
	Reputation float64 `json:"reputation"`
	Load       int     `json:"load"`
}

// ListWorkers returns every live worker.
func (e *Engine) ListWorkers(ctx context.Context) ([]WorkerInfo, error) {
	cands, err := e.candidates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]WorkerInfo, len(cands))
	for i, c := range cands {
		out[i] = WorkerInfo{Worker: c.Worker, Reputation: c.Reputation, Load: c.Load}
	}
	return out, nil
}

// WorkerEvent handles an event a worker sends about its task. Progress
// updates the job's progress and message; other types are passed to
// observers.
func (e *Engine) WorkerEvent(ctx context.Context, workerID string, ev protocol.WorkerEvent) error {
	if ev.WorkerID != "" && ev.WorkerID != workerID {
		return fmt.Errorf("%w: event from %q sent as %q", ErrWorkerIDMismatch, ev.WorkerID, workerID)
	}
	if ev.EventType != protocol.EventProgress || ev.TargetJobID == "" {
		detail := map[string]any{"event_type": ev.EventType, "payload": ev.Payload}
		jobID, taskID := ev.TargetJobID, ev.TargetTaskID
		if jobID != "" {
			held, err := e.holdsTask(ctx, workerID, jobID, taskID)
			if err != nil {
				return err
			}
			if !held {
				// Not a task of this worker's: kept as the worker's own
				// event, out of that job's audit trail.
				detail["target_job_id"], detail["target_task_id"] = jobID, taskID
				jobID, taskID = "", ""
			}
		}
		e.publish(ctx, Event{Type: EventWorkerEvent, Time: e.now(), JobID: jobID, TaskID: taskID, WorkerID: workerID, Detail: detail})
		return nil
	}
	progress, _ := ev.Payload["progress"].(float64)
	message, _ := ev.Payload["message"].(string)
	progress = min(max(progress, 0), 1)
	mutate := e.mutate // a progress event for any task of the job reads them all
	if ev.TargetTaskID != "" {
		mutate = func(ctx context.Context, id string, fn func(*txn, *store.Job) error) (*store.Job, error) {
			return e.mutateTask(ctx, id, ev.TargetTaskID, fn)
		}
	}
	_, err := mutate(ctx, ev.TargetJobID, func(t *txn, j *store.Job) error {
		if j.Status.Terminal() || !ownsTask(j, ev.TargetTaskID, workerID) {
			return errSkip
		}
		j.Progress = progress
		j.ProgressMessage = message
		t.emit(Event{Type: EventProgress, TaskID: ev.TargetTaskID, WorkerID: workerID, State: j.CurrentState,
			Detail: map[string]any{"progress": progress, "message": message}})
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// holdsTask reports whether the worker runs the task of the job (any task
// of it when taskID is empty) now.
func (e *Engine) holdsTask(ctx context.Context, workerID, jobID, taskID string) (bool, error) {
	var j *store.Job
	var err error
	if taskID != "" {
		j, err = e.store.LoadJob(ctx, jobID, taskID)
	} else {
		j, err = e.store.GetJob(ctx, jobID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !j.Status.Terminal() && ownsTask(j, taskID, workerID), nil
}

// ownsTask reports whether the worker runs the task (any task of the job
// when taskID is empty).
func ownsTask(j *store.Job, taskID, workerID string) bool {
	for id, run := range j.Tasks {
		if (taskID == "" || id == taskID) && run.WorkerID == workerID && run.State == store.TaskRunning {
			return true
		}
	}
	return false
}
