package worker

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Handler runs one task. Its ctx is cancelled when the orchestrator cancels
// the task (WebSocket command or heartbeat answer), when the task's deadline
// passes, and when the worker shuts down and ShutdownTimeout has passed.
//
// The returned error decides a failed result's code: a *TaskError (see
// Permanent, InvalidInput, ...) gives its code, context.DeadlineExceeded
// gives TIMEOUT_ERROR, anything else TRANSIENT_ERROR with the error's text.
// A panic is reported as TRANSIENT_ERROR "panic: ...".
type Handler func(ctx context.Context, t *Task) (Result, error)

// Middleware wraps every handler; the first one added with Use is the
// outermost.
type Middleware func(next Handler) Handler

// CommandHandler handles a custom WebSocket command from an orchestrator.
// It runs on the connection's reader, so it should return quickly.
type CommandHandler func(ctx context.Context, cmd protocol.Command) error

// Result is what a handler returns on success.
type Result struct {
	// Status is the result status: empty means "success". A custom status
	// (declared with OutputStatuses) follows the blueprint transition of that
	// name; "failure" and "cancelled" are the protocol's own.
	Status string
	// Data is the task's output, merged into the job's state history.
	Data map[string]any
	// Metadata is copied to the result's metadata.
	Metadata map[string]any
}

// SkillOption configures a skill registered with Handle.
type SkillOption func(*skill)

// Price sets the skill's price (capabilities.cost_per_skill), used by the
// orchestrator's cost strategies. A price in Config.CostPerSkill wins.
func Price(p float64) SkillOption { return func(s *skill) { s.price, s.hasPrice = p, true } }

// OutputStatuses declares custom result statuses the handler may return
// besides success and failure (e.g. "needs_review"). Orchestrators skip
// workers that do not declare a status a blueprint needs.
func OutputStatuses(statuses ...string) SkillOption {
	return func(s *skill) { s.info.OutputStatus = append(s.info.OutputStatus, statuses...) }
}

// SkillType sets the skill's type (default: its name). Skills of one type
// share the concurrency Limit.
func SkillType(t string) SkillOption { return func(s *skill) { s.info.Type = t } }

// Limit caps how many tasks of the skill's type run at once (on top of
// Config.MaxConcurrentTasks). When the limit is reached the skill is no
// longer advertised as available; a task that arrives anyway waits for a
// free slot. Skills sharing a type share the smallest limit declared.
func Limit(n int) SkillOption { return func(s *skill) { s.limit = n } }

// Description sets the skill's description.
func Description(d string) SkillOption { return func(s *skill) { s.info.Description = d } }

// SkillVersion sets the skill's version.
func SkillVersion(v string) SkillOption { return func(s *skill) { s.info.Version = v } }

// InputSchema declares a JSON schema for the task params. Params that do
// not match it fail with INVALID_INPUT_ERROR before the handler runs; the
// orchestrator also checks it before dispatching. The RXON subset is
// enforced: type, properties, required, additionalProperties: false, items,
// enum, anyOf.
func InputSchema(schema map[string]any) SkillOption {
	return func(s *skill) { s.info.InputSchema = schema }
}

// OutputSchema declares a JSON schema for the result data of a successful
// task. Data that does not match it fails with CONTRACT_VIOLATION_ERROR.
func OutputSchema(schema map[string]any) SkillOption {
	return func(s *skill) { s.info.OutputSchema = schema }
}

// Properties sets free-form skill properties (e.g. {"category": "AI"}).
func Properties(p map[string]any) SkillOption {
	return func(s *skill) { s.info.Properties = p }
}

// skill is a registered skill.
type skill struct {
	info     protocol.SkillInfo
	handler  Handler
	limit    int
	price    float64
	hasPrice bool
}

func (s *skill) typ() string {
	if s.info.Type != "" {
		return s.info.Type
	}
	return s.info.Name
}

// newSkill builds and checks a skill.
func newSkill(name string, h Handler, opts []SkillOption) (*skill, error) {
	if !validIdent(name) {
		return nil, fmt.Errorf("invalid skill name %q: must match %s", name, identRE)
	}
	if h == nil {
		return nil, fmt.Errorf("skill %q: nil handler", name)
	}
	s := &skill{info: protocol.SkillInfo{Name: name, SchemaDialect: "json-schema"}, handler: h}
	for _, o := range opts {
		o(s)
	}
	if s.info.Type == "" {
		s.info.Type = name
	}
	if !validIdent(s.info.Type) {
		return nil, fmt.Errorf("skill %q: invalid type %q: must match %s", name, s.info.Type, identRE)
	}
	if s.limit < 0 {
		return nil, fmt.Errorf("skill %q: negative limit", name)
	}
	if s.hasPrice && s.price < 0 {
		return nil, fmt.Errorf("skill %q: negative price", name)
	}
	if len(s.info.OutputStatus) > 0 {
		statuses := []string{protocol.TaskSuccess, protocol.TaskFailure}
		for _, st := range s.info.OutputStatus {
			if st == "" {
				return nil, fmt.Errorf("skill %q: empty output status", name)
			}
			if !slices.Contains(statuses, st) {
				statuses = append(statuses, st)
			}
		}
		s.info.OutputStatus = statuses
	}
	for _, sc := range []*map[string]any{&s.info.InputSchema, &s.info.OutputSchema} {
		if *sc != nil {
			norm, err := normalizeSchema(*sc)
			if err != nil {
				return nil, fmt.Errorf("skill %q: %w", name, err)
			}
			*sc = norm
		}
	}
	s.info.Properties = maps.Clone(s.info.Properties)
	return s, nil
}
