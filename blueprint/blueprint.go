package blueprint

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Handler is the Go code run when a job enters a state. It reads the job
// through c and chooses exactly one action (GoTo, Dispatch, DispatchParallel,
// RunBlueprint or AwaitApproval); end-state handlers choose none. A returned
// error is retried with backoff and finally quarantines the job.
type Handler func(c *Context) error

// Blueprint is a named state machine. Build it with New and the declaration
// methods, then register it with an orchestrator, which validates it.
type Blueprint struct {
	name       string
	apiVersion string
	endpoint   string
	start      string
	states     map[string]*state
	order      []string // declaration order, for stable output
	stores     map[string]DataStore
	errs       []error
}

type stateKind int

const (
	kindNormal stateKind = iota
	kindEnd
	kindAggregator
)

type state struct {
	name      string
	kind      stateKind
	handlers  []*handler // conditional handlers in declaration order
	fallback  *handler   // the unconditional handler
	endStatus protocol.JobStatus
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// New starts a blueprint declaration.
func New(name string) *Blueprint {
	b := &Blueprint{name: name, states: map[string]*state{}, stores: map[string]DataStore{}}
	if !identRE.MatchString(name) {
		b.fail("", "name must match %s", identRE)
	}
	return b
}

// Name returns the blueprint's name.
func (b *Blueprint) Name() string { return b.name }

// Endpoint exposes the blueprint on the client API: jobs are created with
// POST /api/{version}{path}, for example Endpoint("v1", "/jobs/full_showcase").
func (b *Blueprint) Endpoint(version, path string) *Blueprint {
	if !identRE.MatchString(version) {
		b.fail("", "endpoint version %q must match %s", version, identRE)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if strings.Contains(path, "{") || strings.Contains(path, "..") || strings.ContainsAny(path, " ?#") || path == "/" {
		b.fail("", "invalid endpoint path %q", path)
	}
	b.apiVersion, b.endpoint = version, path
	return b
}

// API returns the endpoint version and path, or empty strings when the
// blueprint has no endpoint (child or scheduled blueprints).
func (b *Blueprint) API() (version, path string) { return b.apiVersion, b.endpoint }

// Start declares the start state and its handler. A blueprint has exactly one.
func (b *Blueprint) Start(name string, fn Handler, opts ...Option) *Blueprint {
	if b.start != "" && b.start != name {
		b.fail(name, "blueprint already has a start state %q", b.start)
	}
	b.start = name
	return b.State(name, fn, opts...)
}

// State declares a handler for a state. Declaring several handlers for one
// state with When conditions makes them alternatives: the first whose
// condition holds runs, and the one without a condition is the fallback.
func (b *Blueprint) State(name string, fn Handler, opts ...Option) *Blueprint {
	b.addHandler(name, kindNormal, fn, opts)
	return b
}

// Aggregator declares the fan-in state of DispatchParallel. Its handler runs
// once, after every branch has ended, and reads the branch results with
// Context.Branches.
func (b *Blueprint) Aggregator(name string, fn Handler, opts ...Option) *Blueprint {
	b.addHandler(name, kindAggregator, fn, opts)
	return b
}

// End declares an end state. fn may be nil; when set it runs on entry (for
// logging or SetResult) and must not choose an action. The job ends
// "finished" when the state is named "finished" and "failed" otherwise,
// unless AsFinished or AsFailed says otherwise.
func (b *Blueprint) End(name string, fn Handler, opts ...Option) *Blueprint {
	st := b.stateFor(name, kindEnd)
	if st == nil {
		return b
	}
	if st.fallback != nil {
		b.fail(name, "end state declared twice")
		return b
	}
	h := &handler{fn: fn}
	for _, o := range opts {
		o(h)
	}
	switch {
	case h.err != nil:
		b.fail(name, "%v", h.err)
	case h.cond != "" || len(h.to) > 0 || len(h.on) > 0 || h.fanIn != "" || h.child != "" || h.strategy != "":
		b.fail(name, "an end state cannot declare a condition or transitions")
	}
	st.endStatus = protocol.StatusFailed
	if name == "finished" {
		st.endStatus = protocol.StatusFinished
	}
	if h.endStatus != "" {
		st.endStatus = h.endStatus
	}
	st.fallback = h
	return b
}

// DataStore attaches a named key/value store that handlers of every job of
// this blueprint share (Context.Store).
func (b *Blueprint) DataStore(name string, s DataStore) *Blueprint {
	if _, dup := b.stores[name]; dup {
		b.fail("", "data store %q declared twice", name)
	}
	b.stores[name] = s
	return b
}

func (b *Blueprint) stateFor(name string, kind stateKind) *state {
	if !identRE.MatchString(name) {
		b.fail(name, "state name must match %s", identRE)
		return nil
	}
	st, ok := b.states[name]
	if !ok {
		st = &state{name: name, kind: kind}
		b.states[name] = st
		b.order = append(b.order, name)
		return st
	}
	if st.kind != kind {
		b.fail(name, "declared both as %s and as %s", st.kind, kind)
		return nil
	}
	return st
}

func (b *Blueprint) addHandler(name string, kind stateKind, fn Handler, opts []Option) {
	st := b.stateFor(name, kind)
	if st == nil {
		return
	}
	if fn == nil {
		b.fail(name, "handler is nil")
		return
	}
	h := &handler{fn: fn}
	for _, o := range opts {
		o(h)
	}
	if h.err != nil {
		b.fail(name, "%v", h.err)
		return
	}
	if h.endStatus != "" {
		b.fail(name, "AsFinished and AsFailed apply to end states only")
	}
	if h.cond == "" {
		if st.fallback != nil {
			b.fail(name, "duplicate handler: the state already has an unconditional handler")
			return
		}
		st.fallback = h
		return
	}
	for _, other := range st.handlers {
		if other.cond == h.cond {
			b.fail(name, "duplicate handler: condition %q is declared twice", h.cond)
			return
		}
	}
	prog, err := compileCondition(h.cond)
	if err != nil {
		b.fail(name, "condition %q: %v", h.cond, err)
		return
	}
	h.prog = prog
	st.handlers = append(st.handlers, h)
}

func (b *Blueprint) fail(stateName, format string, args ...any) {
	prefix := fmt.Sprintf("blueprint %q", b.name)
	if stateName != "" {
		prefix += fmt.Sprintf(": state %q", stateName)
	}
	b.errs = append(b.errs, fmt.Errorf("%s: %s", prefix, fmt.Sprintf(format, args...)))
}

func (k stateKind) String() string {
	switch k {
	case kindEnd:
		return "an end state"
	case kindAggregator:
		return "an aggregator"
	}
	return "a normal state"
}

// Validate reports every problem of the declaration at once: declaration
// errors (duplicates, bad conditions), a missing or second start state, no end
// state, transitions to undeclared states, fan-in to a non-aggregator, states
// without a handler or without a way out, and states unreachable from the
// start. Each error names the blueprint and the state.
func (b *Blueprint) Validate() error {
	errs := slices.Clone(b.errs)
	add := func(stateName, format string, args ...any) {
		prefix := fmt.Sprintf("blueprint %q", b.name)
		if stateName != "" {
			prefix += fmt.Sprintf(": state %q", stateName)
		}
		errs = append(errs, fmt.Errorf("%s: %s", prefix, fmt.Sprintf(format, args...)))
	}
	if b.start == "" {
		add("", "no start state (declare one with Start)")
	}
	hasEnd := false
	for _, name := range b.order {
		st := b.states[name]
		if st.kind == kindEnd {
			hasEnd = true
			continue
		}
		if st.fallback == nil && len(st.handlers) == 0 {
			add(name, "has no handler")
		}
		for _, h := range st.all() {
			if len(h.to) == 0 && len(h.on) == 0 && h.fanIn == "" {
				add(name, "handler declares no transition (use To, On or FanIn)")
			}
			if (h.child != "" || h.strategy != "") && len(h.on) == 0 {
				add(name, "Child and Using need On(outcome, state) routes")
			}
			for _, t := range h.to {
				b.checkTarget(add, name, t, false)
			}
			for _, r := range h.on {
				b.checkTarget(add, name, r.state, false)
			}
			if h.fanIn != "" {
				b.checkTarget(add, name, h.fanIn, true)
			}
		}
	}
	if !hasEnd {
		add("", "no end state (declare at least one with End)")
	}
	if b.start != "" {
		if st, ok := b.states[b.start]; ok && st.kind != kindNormal {
			add(b.start, "the start state must be a normal state")
		}
		reached := b.reachable()
		for _, name := range b.order {
			if !reached[name] {
				add(name, "unreachable from the start state %q", b.start)
			}
		}
	}
	return errors.Join(errs...)
}

func (b *Blueprint) checkTarget(add func(string, string, ...any), from, target string, wantAggregator bool) {
	st, ok := b.states[target]
	switch {
	case !ok:
		add(from, "transition to undeclared state %q", target)
	case wantAggregator && st.kind != kindAggregator:
		add(from, "fan-in target %q is not an aggregator state (declare it with Aggregator)", target)
	case !wantAggregator && st.kind == kindAggregator:
		add(from, "aggregator state %q can only be reached through FanIn", target)
	}
}

func (b *Blueprint) reachable() map[string]bool {
	seen := map[string]bool{}
	stack := []string{b.start}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		st, ok := b.states[name]
		if !ok {
			continue
		}
		for _, h := range st.all() {
			stack = append(stack, h.targets()...)
		}
	}
	return seen
}

// all returns the conditional handlers followed by the fallback.
func (s *state) all() []*handler {
	if s.fallback == nil {
		return s.handlers
	}
	return append(slices.Clone(s.handlers), s.fallback)
}

// StartState returns the start state's name.
func (b *Blueprint) StartState() string { return b.start }

// IsEnd reports whether name is an end state, and the job status it ends with.
func (b *Blueprint) IsEnd(name string) (protocol.JobStatus, bool) {
	st, ok := b.states[name]
	if !ok || st.kind != kindEnd {
		return "", false
	}
	return st.endStatus, true
}

// HasEndHandler reports whether the end state runs a handler on entry.
func (b *Blueprint) HasEndHandler(name string) bool {
	st, ok := b.states[name]
	return ok && st.kind == kindEnd && st.fallback != nil && st.fallback.fn != nil
}

// Children returns the names of the blueprints this one declares it runs as
// children (Child option), for cross-checks at registration.
func (b *Blueprint) Children() []string {
	var out []string
	for _, name := range b.order {
		for _, h := range b.states[name].all() {
			if h.child != "" && !slices.Contains(out, h.child) {
				out = append(out, h.child)
			}
		}
	}
	return out
}

// States returns the state names in declaration order.
func (b *Blueprint) States() []string { return slices.Clone(b.order) }
