package engine

import (
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Handlers see the public blueprint types; the store keeps types of its own
// (format 2), so that a change to the public API is not a change to what is
// stored. Each pair has the same fields, so these are plain conversions: a
// field added to one side and not the other stops them compiling, which is
// when the stored format must decide about it. The engine makes results
// itself as store.Result; strategies are stored by name.

// specOf is a task a handler asked for, as stored.
func specOf(t blueprint.Task) store.TaskSpec { return store.TaskSpec(t) }

// clientOf is a job's client, as stored.
func clientOf(c blueprint.Client) store.Client { return store.Client(c) }

// handlerClient is a job's client as a handler sees it.
func handlerClient(c store.Client) blueprint.Client { return blueprint.Client(c) }

// handlerResult is a stored result as a handler sees it (nil for none).
func handlerResult(r *store.Result) *blueprint.TaskResult { return (*blueprint.TaskResult)(r) }

// handlerBranches are the stored results of a fan-out's branches as the
// aggregator sees them, in a map of its own.
func handlerBranches(m map[string]store.Result) map[string]blueprint.TaskResult {
	if m == nil {
		return nil
	}
	out := make(map[string]blueprint.TaskResult, len(m))
	for id, r := range m {
		out[id] = blueprint.TaskResult(r)
	}
	return out
}
