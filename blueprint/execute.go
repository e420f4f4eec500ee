package blueprint

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Input is what the engine gives Execute about a job.
type Input struct {
	JobID        string
	State        string
	InitialData  map[string]any
	StateHistory map[string]any // Set writes here; the engine saves it
	LastResult   *TaskResult
	Branches     map[string]TaskResult
	Client       Client
	// Logger is what Context.Logger adds the job's id, blueprint and
	// state to (nil: slog.Default()).
	Logger *slog.Logger
	// BlobBucket is the bucket of the orchestrator's blob storage ("" when
	// it has none), for Context.FileURI.
	BlobBucket string
}

// Outcome is what Execute returns: the chosen action (nil in an end state),
// an explicit result if the handler set one, and which handler ran.
type Outcome struct {
	Action    Action
	Result    any
	HasResult bool
	Condition string // the When condition of the handler that ran; "" for the fallback
}

// Execute runs the handler for in.State: the first conditional handler whose
// condition holds, else the fallback. It enforces the action rules; such
// errors wrap ErrMisuse. Other errors come from the handler itself (a panic
// is returned as an error).
func (b *Blueprint) Execute(ctx context.Context, in Input) (out Outcome, err error) {
	st, ok := b.states[in.State]
	if !ok {
		return out, fmt.Errorf("%w: blueprint %q has no state %q", ErrMisuse, b.name, in.State)
	}
	if in.StateHistory == nil {
		in.StateHistory = map[string]any{}
	}
	if in.InitialData == nil {
		in.InitialData = map[string]any{}
	}
	h, err := b.pick(ctx, st, &in)
	if err != nil {
		return out, err
	}
	if h == nil || h.fn == nil { // an end state without a handler
		return out, nil
	}
	c := &Context{ctx: ctx, bp: b, in: &in, decl: h, isEnd: st.kind == kindEnd}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler for state %q panicked: %v\n%s", in.State, r, debug.Stack())
		}
	}()
	herr := h.fn(c)
	if c.misuse != nil {
		return out, c.misuse
	}
	if herr != nil {
		return out, herr
	}
	if c.action == nil && st.kind != kindEnd {
		return out, fmt.Errorf("%w: state %q: the handler returned without choosing an action", ErrMisuse, in.State)
	}
	return Outcome{Action: c.action, Result: c.result, HasResult: c.hasResul, Condition: h.cond}, nil
}

func (b *Blueprint) pick(ctx context.Context, st *state, in *Input) (*handler, error) {
	if len(st.handlers) > 0 {
		env := conditionInput(in)
		for _, h := range st.handlers {
			ok, err := evalCondition(h.prog, env)
			if err != nil && in.Logger != nil && in.Logger.Enabled(ctx, slog.LevelDebug) {
				jobLogger(in, b.name).DebugContext(ctx, "condition evaluated as false", "condition", h.cond, "error", err)
			}
			if ok {
				return h, nil
			}
		}
	}
	if st.fallback == nil {
		return nil, fmt.Errorf("%w: state %q: no condition matched and there is no unconditional handler", ErrMisuse, st.name)
	}
	return st.fallback, nil
}

func conditionInput(in *Input) map[string]any {
	result := map[string]any{}
	if r := in.LastResult; r != nil {
		result["status"] = r.Status
		result["data"] = r.Data
		result["worker_id"] = r.WorkerID
		if r.Error != nil {
			result["error"] = map[string]any{"code": r.Error.Code, "message": r.Error.Message}
		}
	}
	return map[string]any{
		"initial_data":  in.InitialData,
		"state_history": in.StateHistory,
		"job_id":        in.JobID,
		"client":        map[string]any{"name": in.Client.Name, "plan": in.Client.Plan, "params": in.Client.Params},
		"result":        result,
	}
}
