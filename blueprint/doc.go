// Package blueprint is the DSL for Avtomatika blueprints: named state
// machines whose states are Go handlers.
//
// # States
//
// A blueprint has exactly one start state (Start), any number of ordinary
// states (State), aggregator states that join parallel tasks (Aggregator),
// and one or more end states (End). An end state ends the job "finished"
// when it is named "finished" and "failed" otherwise, unless AsFinished or
// AsFailed says so explicitly.
//
// # Handlers and actions
//
// A handler is a func(*Context) error. It reads the job (InitialData, Get,
// Decode, LastResult, Branches, Client, Store) and chooses exactly one
// action:
//
//   - GoTo(state) moves on;
//   - Dispatch(task) sends one task to a remote worker; the result status
//     ("success", "failure", or a custom one such as "needs_review") picks
//     the next state;
//   - DispatchParallel(tasks) sends isolated branches; once every branch has
//     ended, the FanIn aggregator runs with all results, failures included;
//   - RunBlueprint(name, data) starts a child job and resumes on its
//     "success" or "failure";
//   - AwaitApproval(message) waits for a human decision.
//
// Choosing two actions, or none outside an end state, fails the job with a
// clear error. A handler that returns an error is retried with backoff.
//
// # Declared transitions
//
// Go cannot read handler bodies, so each handler declares where it may go:
// To(states...) for GoTo, On(outcome, state) for task results, child
// outcomes and approval decisions, FanIn(aggregator) for parallel tasks,
// Child(name) for sub-blueprints and Using(strategy) for the dispatch
// strategy. Validation (unknown targets, unreachable states, missing start
// or end, duplicate handlers, bad conditions, unknown strategies), graphs
// (DOT, Mermaid) and run-time checks all use these declarations.
//
// # Conditions
//
// Several handlers may serve one state: When(expr) makes a handler
// conditional, the first whose condition holds runs, and the handler without
// a condition is the fallback. Conditions are expr-lang expressions over
// initial_data, state_history, job_id, client and result (the last task
// result), compiled once at declaration.
package blueprint
