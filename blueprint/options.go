package blueprint

import (
	"fmt"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/expr-lang/expr/vm"
)

// Option declares something about a handler: its condition and the
// transitions it may take. Handlers declare their transitions because Go
// cannot read handler bodies; validation, graphs and run-time checks all use
// these declarations.
type Option func(*handler)

type route struct{ outcome, state string }

type handler struct {
	fn        Handler
	cond      string
	prog      *vm.Program
	to        []string
	on        []route
	fanIn     string
	child     string
	strategy  Strategy
	endStatus protocol.JobStatus
	err       error
}

func (h *handler) targets() []string {
	out := append([]string(nil), h.to...)
	for _, r := range h.on {
		out = append(out, r.state)
	}
	if h.fanIn != "" {
		out = append(out, h.fanIn)
	}
	return out
}

func (h *handler) routes() map[string]string {
	if len(h.on) == 0 {
		return nil
	}
	m := make(map[string]string, len(h.on))
	for _, r := range h.on {
		m[r.outcome] = r.state
	}
	return m
}

// When makes the handler conditional. The condition is an expr-lang
// expression over initial_data, state_history, job_id, client and result (the
// last task result: status, data, error), compiled once at declaration, for
// example `initial_data.quality == "low"`. Missing fields read as nil; an
// evaluation error counts as false.
func When(condition string) Option {
	return func(h *handler) {
		if condition == "" {
			h.err = fmt.Errorf("empty When condition")
		}
		h.cond = condition
	}
}

// To declares the states the handler may GoTo.
func To(states ...string) Option {
	return func(h *handler) { h.to = append(h.to, states...) }
}

// On routes an outcome to a state. Outcomes are task result statuses
// ("success", "failure", custom ones such as "needs_review") for Dispatch,
// "success" and "failure" for RunBlueprint, and the decisions offered by
// AwaitApproval.
func On(outcome, state string) Option {
	return func(h *handler) {
		for _, r := range h.on {
			if r.outcome == outcome {
				h.err = fmt.Errorf("outcome %q routed twice", outcome)
				return
			}
		}
		if !identRE.MatchString(outcome) {
			h.err = fmt.Errorf("outcome %q must match %s", outcome, identRE)
			return
		}
		h.on = append(h.on, route{outcome, state})
	}
}

// FanIn declares the aggregator state that DispatchParallel joins into.
func FanIn(aggregator string) Option {
	return func(h *handler) { h.fanIn = aggregator }
}

// Child declares the blueprint that RunBlueprint starts, so that graphs show
// it and registration checks it exists.
func Child(blueprint string) Option {
	return func(h *handler) { h.child = blueprint }
}

// Using sets the dispatch strategy for the tasks this handler dispatches.
// Unknown names are rejected here, at declaration.
func Using(s Strategy) Option {
	return func(h *handler) {
		if !s.Valid() {
			h.err = fmt.Errorf("unknown dispatch strategy %q (known: %v)", s, Strategies())
			return
		}
		h.strategy = s
	}
}

// AsFinished makes an end state finish the job with status "finished".
func AsFinished() Option {
	return func(h *handler) { h.endStatus = protocol.StatusFinished }
}

// AsFailed makes an end state finish the job with status "failed".
func AsFailed() Option {
	return func(h *handler) { h.endStatus = protocol.StatusFailed }
}

// Strategy names how the orchestrator picks a worker for a task.
type Strategy string

// Dispatch strategies. See the dispatch documentation for the exact rules.
const (
	Default          Strategy = "default"
	RoundRobin       Strategy = "round_robin"
	LeastConnections Strategy = "least_connections"
	Cheapest         Strategy = "cheapest"
	BestValue        Strategy = "best_value"
	Overflow         Strategy = "overflow"
)

// Strategies lists every known strategy.
func Strategies() []Strategy {
	return []Strategy{Default, RoundRobin, LeastConnections, Cheapest, BestValue, Overflow}
}

// Valid reports whether s is a known strategy.
func (s Strategy) Valid() bool {
	for _, k := range Strategies() {
		if s == k {
			return true
		}
	}
	return false
}
