package engine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/google/uuid"
)

// Errors of the engine API, matched with errors.Is.
var (
	ErrJobNotFound      = errors.New("job not found")
	ErrUnknownBlueprint = errors.New("unknown blueprint")
	ErrJobTerminal      = errors.New("job has already ended")
	ErrNotAwaitingHuman = errors.New("job is not waiting for a human decision")
	ErrInvalidDecision  = errors.New("invalid decision")
	// ErrApprovalToken: the approval token is wrong, used or expired, or
	// names no pending approval (which of these is not told).
	ErrApprovalToken    = errors.New("invalid, used or expired approval token")
	ErrInvalidInput     = errors.New("invalid input")
	ErrUnknownWorker    = errors.New("unknown worker")
	ErrWorkerIDMismatch = errors.New("worker id mismatch")
	ErrNotStarted       = errors.New("engine not started")
)

// NewJob is a request to create a job.
type NewJob struct {
	Blueprint    string
	InitialData  map[string]any
	Client       blueprint.Client
	WebhookURL   string
	TraceContext map[string]string
	// Policy goes with every task of the job (and of its child jobs); a
	// task type outside its allowed_skills fails the job.
	Policy map[string]any
	// IdempotencyKey, when set, makes the creation happen once per client
	// and key for IdempotencyTTL: a repeat gets *DuplicateError with the
	// first job's id and creates nothing.
	IdempotencyKey string
}

// IdempotencyTTL is how long an idempotency key keeps its job.
const IdempotencyTTL = 24 * time.Hour

// DuplicateError says a creation's idempotency key was used before, by
// job JobID.
type DuplicateError struct{ JobID string }

func (e *DuplicateError) Error() string {
	return "a job was already created with this idempotency key: " + e.JobID
}

func idempotencyKey(client, key string) string { return "idem:" + client + ":" + key }

// IdempotentJob returns the id of the job a client created with an
// idempotency key, and whether there is one.
func (e *Engine) IdempotentJob(ctx context.Context, client, key string) (string, bool, error) {
	id, err := e.store.GetValue(ctx, idempotencyKey(client, key))
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

// CreateJob creates a job and runs its first step (see firstStep) in the
// same write, or queues that step for an executor.
func (e *Engine) CreateJob(ctx context.Context, req NewJob) (*store.Job, error) {
	bp, ok := e.Blueprint(req.Blueprint)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBlueprint, req.Blueprint)
	}
	data, err := blueprint.Normalize(req.InitialData)
	if err != nil {
		return nil, fmt.Errorf("%w: initial_data: %v", ErrInvalidInput, err)
	}
	initial, _ := data.(map[string]any)
	if initial == nil {
		initial = map[string]any{}
	}
	var policy map[string]any
	if req.Policy != nil {
		p, err := blueprint.Normalize(req.Policy)
		if err != nil {
			return nil, fmt.Errorf("%w: policy: %v", ErrInvalidInput, err)
		}
		policy, _ = p.(map[string]any)
	}
	now := e.now()
	id := uuid.NewString()
	if req.IdempotencyKey != "" {
		// An id in the key's tree, so that a store with shards writes the
		// key and the job in one atomic step.
		id = store.NewTreeIDFor(idempotencyKey(req.Client.Name, req.IdempotencyKey))
	}
	j := &store.Job{
		ID: id, Blueprint: bp.Name(), Status: protocol.StatusPending,
		CurrentState: bp.StartState(), InitialData: initial, StateHistory: map[string]any{},
		Client: clientOf(req.Client), WebhookURL: req.WebhookURL, TraceContext: req.TraceContext,
		Policy: policy, CreatedAt: now, UpdatedAt: now,
	}
	// Every span of the job (steps, dispatches, the workers' tasks) joins
	// the trace of this one.
	ctx, span := e.startSpan(withTrace(ctx, req.TraceContext), "job.create "+j.Blueprint, j)
	defer span.End()
	if tc := traceCarrier(ctx); tc != nil {
		j.TraceContext = tc
	}
	t := &txn{now: now, mayHand: true}
	defer t.settle(false) // unless committed
	// The event's snapshot is the job as committed, after its first step.
	t.emit(Event{Type: EventJobCreated, JobID: j.ID, State: j.CurrentState})
	if next := e.firstStep(ctx, t, j, bp); next != nil {
		j = next
		if more := e.stepsAfter(ctx, t, j, bp); more != nil {
			j = more
		}
	} else {
		t.fx.Ready = append(t.fx.Ready, j.ID) // an executor runs the step
	}
	if req.IdempotencyKey != "" {
		t.fx.Onces = append(t.fx.Onces, store.Once{Key: idempotencyKey(req.Client.Name, req.IdempotencyKey), Value: j.ID, TTL: IdempotencyTTL})
	}
	j.UpdatedAt = now
	if t.fx.Events, err = e.encodeEvents(t.events, j); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	// The job's writes in this process hold its lock, the create too: a
	// pickup of its first task must not write it before the copy below is
	// kept, or the copy would be stale.
	lock, err := e.locks.acquire(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	if err := e.placed.write(t.fx.Enqueue, func() error { return e.store.CreateJob(ctx, j, t.fx) }); err != nil {
		if errors.Is(err, store.ErrOnceTaken) {
			if id, ok, gerr := e.IdempotentJob(ctx, req.Client.Name, req.IdempotencyKey); gerr == nil && ok {
				return nil, &DuplicateError{JobID: id}
			}
		}
		return nil, fmt.Errorf("create job: %w", err)
	}
	j.Loaded.All = true // everything it has was just written
	e.recent.put(j)
	e.committed(t, j)
	return j, nil
}

// GetJob returns a job.
func (e *Engine) GetJob(ctx context.Context, id string) (*store.Job, error) {
	j, err := e.store.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	return j, err
}

// ListJobs lists jobs newest first.
func (e *Engine) ListJobs(ctx context.Context, f store.JobFilter) ([]*store.Job, string, error) {
	return e.store.ListJobs(ctx, f)
}

// CancelJob cancels a job that has not ended, with its outstanding tasks
// (workers running them are told) and its child job. The parent of a
// cancelled child resumes along its failure route.
func (e *Engine) CancelJob(ctx context.Context, id, reason string) (*store.Job, error) {
	if reason == "" {
		reason = "cancelled"
	}
	var child string
	j, err := e.mutate(ctx, id, func(t *txn, j *store.Job) error {
		if j.Status.Terminal() {
			return fmt.Errorf("%w: %s is %s", ErrJobTerminal, id, j.Status)
		}
		child = j.ChildJobID
		e.finish(t, j, protocol.StatusCancelled, reason, nil)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	if err != nil {
		return j, err
	}
	if child != "" {
		if _, err := e.CancelJob(ctx, child, "parent job cancelled"); err != nil && !errors.Is(err, ErrJobTerminal) && !errors.Is(err, ErrJobNotFound) {
			e.log.Warn("cancel child job", "job_id", id, "child_job_id", child, "error", err)
		}
	}
	return j, nil
}

// Approve delivers a human decision to a job waiting in AwaitApproval.
func (e *Engine) Approve(ctx context.Context, id, decision string) (*store.Job, error) {
	return e.approve(ctx, id, decision, "")
}

// ApproveWithToken is Approve by the holder of the pending approval's
// single-use token instead of its owner: ErrApprovalToken when the token
// is not the approval's, or expired, or the job has none pending (used).
// The token is spent by the decision, in the same write.
func (e *Engine) ApproveWithToken(ctx context.Context, id, token, decision string) (*store.Job, error) {
	if token == "" {
		return nil, ErrApprovalToken
	}
	j, err := e.approve(ctx, id, decision, token)
	if errors.Is(err, ErrJobNotFound) || errors.Is(err, ErrNotAwaitingHuman) {
		return nil, ErrApprovalToken
	}
	return j, err
}

func (e *Engine) approve(ctx context.Context, id, decision, token string) (*store.Job, error) {
	j, err := e.mutate(ctx, id, func(t *txn, j *store.Job) error {
		if token != "" && (j.Approval == nil || subtle.ConstantTimeCompare([]byte(token), []byte(j.Approval.Token)) != 1 || !t.now.Before(j.Approval.ExpiresAt)) {
			return ErrApprovalToken
		}
		if j.Status != protocol.StatusWaitingForHuman || j.Approval == nil {
			return fmt.Errorf("%w: job %s is %s", ErrNotAwaitingHuman, id, j.Status)
		}
		target, ok := j.Routes[decision]
		if !ok {
			return fmt.Errorf("%w %q: expected one of %v", ErrInvalidDecision, decision, j.Approval.Decisions)
		}
		bp, err := e.blueprintOf(j)
		if err != nil {
			return err
		}
		j.LastResult = &store.Result{Type: "human_approval", Status: decision}
		detail := map[string]any{"decision": decision}
		if token != "" {
			detail["by"] = "approval_token"
		}
		t.emit(Event{Type: EventApproval, State: j.CurrentState, Detail: detail})
		e.transition(t, j, bp, target)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	return j, err
}

func (e *Engine) blueprintOf(j *store.Job) (*blueprint.Blueprint, error) {
	bp, ok := e.Blueprint(j.Blueprint)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBlueprint, j.Blueprint)
	}
	return bp, nil
}
