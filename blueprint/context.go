package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// ErrMisuse marks a handler that broke the action rules: two actions in one
// run, none in a non-end state, an action in an end state, or a transition it
// did not declare. The engine fails the job at once instead of retrying.
var ErrMisuse = errors.New("blueprint misuse")

// Client is the API client that owns a job.
type Client struct {
	Name   string         `json:"name"`
	Plan   string         `json:"plan,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// TaskResult is a worker's answer to a task, as a handler sees it.
type TaskResult struct {
	TaskID   string              `json:"task_id"`
	Type     string              `json:"type,omitempty"`
	WorkerID string              `json:"worker_id,omitempty"`
	Status   string              `json:"status"`
	Data     map[string]any      `json:"data,omitempty"`
	Error    *protocol.TaskError `json:"error,omitempty"`
}

// Decode decodes the result data into v (a pointer to a struct or map).
func (r TaskResult) Decode(v any) error { return decodeInto(r.Data, v) }

// Task describes work for a remote worker.
type Task struct {
	Type     string         // the skill name, e.g. "transcode_video"
	Params   map[string]any // sent to the worker as task params
	Priority float64        // higher is taken first
	// MaxCost excludes workers whose price for this skill is higher. Zero
	// means no limit.
	MaxCost float64
	// Timeout bounds execution after a worker picks the task up; zero takes
	// the orchestrator's default.
	Timeout time.Duration
	// DispatchTimeout bounds the wait for a worker; zero waits until the
	// orchestrator's default, if any.
	DispatchTimeout time.Duration
	// ResultTimeout bounds the whole task from dispatch to result.
	ResultTimeout time.Duration
	// Requirements are resource requirements, e.g.
	// {"gpu_info": {"vram_gb": 4}}: numbers compare greater-or-equal.
	Requirements map[string]any
}

// Action is what a handler chose. The engine carries it out.
type Action interface{ action() }

// GoToAction moves the job to another state.
type GoToAction struct{ State string }

// DispatchAction sends one task to a worker; Routes maps result statuses to
// states.
type DispatchAction struct {
	Task     Task
	Strategy Strategy
	Routes   map[string]string
}

// ParallelAction sends tasks as isolated branches and joins in Aggregator.
type ParallelAction struct {
	Tasks      []Task
	Strategy   Strategy
	Aggregator string
}

// ChildAction starts a child blueprint; Routes has "success" and/or "failure".
type ChildAction struct {
	Blueprint   string
	InitialData map[string]any
	Routes      map[string]string
}

// ApprovalAction waits for a human decision; Routes maps decisions to states.
type ApprovalAction struct {
	Message string
	Routes  map[string]string
}

func (GoToAction) action()     {}
func (DispatchAction) action() {}
func (ParallelAction) action() {}
func (ChildAction) action()    {}
func (ApprovalAction) action() {}

// Context is a handler's view of its job and the way it chooses an action.
// It is valid only during the handler call.
type Context struct {
	ctx      context.Context
	bp       *Blueprint
	in       *Input
	decl     *handler
	isEnd    bool
	action   Action
	misuse   error
	result   any
	hasResul bool
	logger   *slog.Logger // made by Logger when first asked
	logOnce  sync.Once
}

// Context returns the step's context.Context; it is cancelled when the
// orchestrator stops.
func (c *Context) Context() context.Context { return c.ctx }

// JobID returns the job's id.
func (c *Context) JobID() string { return c.in.JobID }

// State returns the state being handled.
func (c *Context) State() string { return c.in.State }

// Blueprint returns the blueprint's name.
func (c *Context) Blueprint() string { return c.bp.name }

// Client returns the client that owns the job.
func (c *Context) Client() Client { return c.in.Client }

// Logger returns a logger that carries the job id, the blueprint and the
// state.
func (c *Context) Logger() *slog.Logger {
	c.logOnce.Do(func() { c.logger = jobLogger(c.in, c.bp.name) })
	return c.logger
}

// jobLogger is in.Logger (slog.Default() when nil) with the job's id,
// blueprint and state. It is made only when something logs: most handlers
// never do, and a logger's With costs more than the rest of a step.
func jobLogger(in *Input, blueprint string) *slog.Logger {
	base := in.Logger
	if base == nil {
		base = slog.Default()
	}
	return base.With("job_id", in.JobID, "blueprint", blueprint, "state", in.State)
}

// InitialData returns the job's input. Treat it as read-only.
func (c *Context) InitialData() map[string]any { return c.in.InitialData }

// Input returns one initial_data value (nil when absent).
func (c *Context) Input(key string) any { return c.in.InitialData[key] }

// DecodeInput decodes initial_data into v.
func (c *Context) DecodeInput(v any) error { return decodeInto(c.in.InitialData, v) }

// Get returns a state_history value (nil when absent).
func (c *Context) Get(key string) any { return c.in.StateHistory[key] }

// Decode decodes the state_history value at key into v.
func (c *Context) Decode(key string, v any) error {
	val, ok := c.in.StateHistory[key]
	if !ok {
		return fmt.Errorf("state_history has no %q", key)
	}
	return decodeInto(val, v)
}

// StateHistory returns the job's working memory. Treat it as read-only and
// write with Set.
func (c *Context) StateHistory() map[string]any { return c.in.StateHistory }

// Set stores a JSON-compatible value in state_history. Values are normalised
// to their JSON form (numbers become float64, structs become maps) so that
// every store backend reads back the same thing.
func (c *Context) Set(key string, value any) error {
	v, err := Normalize(value)
	if err != nil {
		return fmt.Errorf("state_history[%q]: %w", key, err)
	}
	c.in.StateHistory[key] = v
	return nil
}

// LastResult returns the result of the task (or child job) that led to this
// state, or nil.
func (c *Context) LastResult() *TaskResult { return c.in.LastResult }

// Branches returns, in an aggregator, every branch result keyed by task id,
// failures included.
func (c *Context) Branches() map[string]TaskResult { return c.in.Branches }

// FileURI returns the s3:// URI of a file of this job in the
// orchestrator's blob storage, s3://<bucket>/jobs/<job_id>/<name>: a file
// the client uploaded through the files API, or one a worker returned. Pass
// it in task params and a worker of the Go SDK receives a local copy. It
// returns "" when the orchestrator has no blob storage or name is not a
// valid file name.
func (c *Context) FileURI(name string) string {
	if c.in.BlobBucket == "" || blob.ValidName(name) != nil {
		return ""
	}
	return blob.NewURI(c.in.BlobBucket, blob.JobKey(c.in.JobID, name))
}

// Store returns the blueprint's data store of that name, or nil.
func (c *Context) Store(name string) DataStore { return c.bp.stores[name] }

// SetResult sets the job's result explicitly (end states). Without it the
// result is state_history[end state] when present, else all of state_history.
func (c *Context) SetResult(v any) error {
	n, err := Normalize(v)
	if err != nil {
		return fmt.Errorf("result: %w", err)
	}
	c.result, c.hasResul = n, true
	return nil
}

// GoTo moves the job to state, which the handler must have declared with To.
func (c *Context) GoTo(state string) error {
	if !slices.Contains(c.decl.to, state) {
		return c.misused("GoTo(%q): the handler does not declare that transition (add To(%q))", state, state)
	}
	return c.choose(GoToAction{State: state})
}

// Dispatch sends a task to a worker chosen by the handler's strategy. The
// result status picks the next state through the handler's On routes.
func (c *Context) Dispatch(t Task) error {
	if err := c.checkTask(t); err != nil {
		return err
	}
	if len(c.decl.on) == 0 {
		return c.misused("Dispatch(%q): the handler declares no On(status, state) routes", t.Type)
	}
	return c.choose(DispatchAction{Task: t, Strategy: c.strategy(), Routes: c.decl.routes()})
}

// DispatchParallel sends tasks as isolated branches. When every branch has
// ended, the job moves to the handler's FanIn aggregator.
func (c *Context) DispatchParallel(tasks []Task) error {
	if c.decl.fanIn == "" {
		return c.misused("DispatchParallel: the handler declares no FanIn(aggregator)")
	}
	if len(tasks) == 0 {
		return c.misused("DispatchParallel: no tasks")
	}
	for _, t := range tasks {
		if err := c.checkTask(t); err != nil {
			return err
		}
	}
	return c.choose(ParallelAction{Tasks: tasks, Strategy: c.strategy(), Aggregator: c.decl.fanIn})
}

// RunBlueprint starts a child job of the named blueprint and waits for it.
// The child's ending picks "success" or "failure" from the On routes.
func (c *Context) RunBlueprint(name string, initialData map[string]any) error {
	if c.decl.child != "" && c.decl.child != name {
		return c.misused("RunBlueprint(%q): the handler declares Child(%q)", name, c.decl.child)
	}
	if len(c.decl.on) == 0 {
		return c.misused("RunBlueprint(%q): the handler declares no On(outcome, state) routes", name)
	}
	data, err := Normalize(initialData)
	if err != nil {
		return c.misused("RunBlueprint(%q): initial data: %v", name, err)
	}
	m, _ := data.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return c.choose(ChildAction{Blueprint: name, InitialData: m, Routes: c.decl.routes()})
}

// AwaitApproval parks the job in waiting_for_human until a decision arrives;
// the decisions are the outcomes of the handler's On routes.
func (c *Context) AwaitApproval(message string) error {
	if len(c.decl.on) == 0 {
		return c.misused("AwaitApproval: the handler declares no On(decision, state) routes")
	}
	return c.choose(ApprovalAction{Message: message, Routes: c.decl.routes()})
}

func (c *Context) checkTask(t Task) error {
	if !identRE.MatchString(t.Type) {
		return c.misused("task type %q must match %s", t.Type, identRE)
	}
	if t.Timeout < 0 || t.DispatchTimeout < 0 || t.ResultTimeout < 0 || t.MaxCost < 0 {
		return c.misused("task %q: timeouts and max cost cannot be negative", t.Type)
	}
	return nil
}

func (c *Context) strategy() Strategy {
	if c.decl.strategy == "" {
		return Default
	}
	return c.decl.strategy
}

func (c *Context) choose(a Action) error {
	if c.isEnd {
		return c.misused("end state %q cannot choose an action", c.in.State)
	}
	if c.action != nil {
		return c.misused("a handler must choose exactly one action per step; it already chose %s", actionName(c.action))
	}
	c.action = a
	return nil
}

func (c *Context) misused(format string, args ...any) error {
	err := fmt.Errorf("%w: state %q: %s", ErrMisuse, c.in.State, fmt.Sprintf(format, args...))
	if c.misuse == nil {
		c.misuse = err
	}
	return err
}

func actionName(a Action) string {
	switch a := a.(type) {
	case GoToAction:
		return fmt.Sprintf("GoTo(%q)", a.State)
	case DispatchAction:
		return fmt.Sprintf("Dispatch(%q)", a.Task.Type)
	case ParallelAction:
		return "DispatchParallel"
	case ChildAction:
		return fmt.Sprintf("RunBlueprint(%q)", a.Blueprint)
	case ApprovalAction:
		return "AwaitApproval"
	}
	return "an action"
}

// Normalize converts v to its JSON form: nil, bool, float64, string,
// []any or map[string]any. The result shares no map or slice with v.
func Normalize(v any) (any, error) {
	switch v.(type) {
	case nil, bool, float64, string:
		return v, nil
	}
	// A value in JSON form already (a decoded request body, say) is
	// copied: what the round trip below would return, for a fraction of
	// its cost.
	if c, ok := copyJSONForm(v, 0); ok {
		return c, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// maxCopyDepth bounds copyJSONForm's recursion: deeper values (or a map
// that contains itself) take the round trip, whose encoder reports cycles.
const maxCopyDepth = 256

// copyJSONForm returns a deep copy of v if v is in JSON form and encoding
// it would not change it (finite numbers, valid UTF-8), else false.
func copyJSONForm(v any, depth int) (any, bool) {
	if depth > maxCopyDepth {
		return nil, false
	}
	switch x := v.(type) {
	case nil, bool:
		return x, true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		return x, utf8.ValidString(x) // the encoder replaces invalid bytes
	case map[string]any:
		if x == nil {
			return nil, true // encoded as null
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, ok := copyJSONForm(e, depth+1)
			if !ok || !utf8.ValidString(k) {
				return nil, false
			}
			out[k] = c
		}
		return out, true
	case []any:
		if x == nil {
			return nil, true
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, ok := copyJSONForm(e, depth+1)
			if !ok {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	}
	return nil, false
}

func decodeInto(src, dst any) error {
	raw, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, dst)
}
