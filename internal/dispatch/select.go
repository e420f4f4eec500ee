package dispatch

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Candidate is a live worker with the figures selection needs.
type Candidate struct {
	Worker     *store.Worker
	Reputation float64
	Load       int // tasks queued for it or running on it
}

// Cost is the candidate's price for a skill; a worker without a price for it
// costs +Inf, so it loses every price comparison.
func (c Candidate) Cost(skill string) float64 {
	if cost, ok := c.Worker.Cost(skill); ok {
		return cost
	}
	return inf
}

// Request is what a task asks of its worker.
type Request struct {
	Type         string
	Requirements map[string]any
	MaxCost      float64  // 0: no limit
	Statuses     []string // result statuses the blueprint routes
	Exclude      []string // workers that already failed this task
}

// Policy holds the orchestrator-wide selection settings.
type Policy struct {
	MinReputation float64 // workers below it get no tasks
	SoftLimit     int     // overflow spills past workers with this many tasks
}

var standardStatuses = []string{protocol.TaskSuccess, protocol.TaskFailure, protocol.TaskCancelled}

// Check applies every filter to one candidate and returns why it fails.
func Check(req Request, c Candidate, p Policy) (bool, string) { return check(req, c, p, true) }

// check is Check; without explain it returns no reason, which keeps the
// filtering of many workers free of formatting.
func check(req Request, c Candidate, p Policy, explain bool) (bool, string) {
	w := c.Worker
	why := func(format string, args ...any) (bool, string) {
		if !explain {
			return false, ""
		}
		return false, fmt.Sprintf(format, args...)
	}
	if !w.HasSkill(req.Type) {
		return why("no skill %s", req.Type)
	}
	switch w.Status {
	case "", protocol.WorkerIdle:
	case protocol.WorkerFull:
		// A worker reports "full" in a heartbeat, which lags: when the
		// orchestrator's own count of its tasks is below its limit, a slot
		// has freed since (the count decides, below).
		if w.MaxConcurrent == 0 || c.Load >= w.MaxConcurrent {
			return false, w.Status
		}
	default:
		return false, w.Status
	}
	if w.MaxConcurrent > 0 && c.Load >= w.MaxConcurrent {
		return why("at capacity (%d tasks)", c.Load)
	}
	// A worker that reports which skills can start now (per-skill limits)
	// gets only those.
	if len(w.AvailableSkills) > 0 && !slices.Contains(w.AvailableSkills, req.Type) {
		return why("skill %s at its limit", req.Type)
	}
	if req.MaxCost > 0 {
		cost, ok := w.Cost(req.Type)
		if !ok {
			return why("no price for %s", req.Type)
		}
		if cost > req.MaxCost {
			return why("price %g above max cost %g", cost, req.MaxCost)
		}
	}
	if c.Reputation < p.MinReputation {
		return why("reputation %.3f below %.3f", c.Reputation, p.MinReputation)
	}
	for _, s := range w.Skills {
		if s.Name != req.Type || len(s.OutputStatus) == 0 {
			continue
		}
		for _, st := range req.Statuses {
			if !slices.Contains(standardStatuses, st) && !slices.Contains(s.OutputStatus, st) {
				return why("does not return status %s", st)
			}
		}
	}
	if ok, reason := requirements(w, req.Requirements, explain); !ok {
		return false, reason
	}
	return true, ""
}

// Filter returns the candidates that pass every filter. Workers in
// req.Exclude are dropped unless no one else is eligible. When every worker
// that would do is below the reputation floor, the best of them is eligible
// all the same (a task must not wait an hour for reputations to recover),
// and reason says so. When none is eligible, reason says why, for the
// job's progress message.
func Filter(req Request, cands []Candidate, p Policy) (eligible []Candidate, reason string) {
	eligible = eligibleOf(req, cands, p)
	if len(eligible) > 0 {
		return eligible, ""
	}
	if p.MinReputation > 0 {
		floorless := p
		floorless.MinReputation = 0
		if below := eligibleOf(req, cands, floorless); len(below) > 0 {
			best := slices.MaxFunc(below, func(a, b Candidate) int { return cmp.Compare(a.Reputation, b.Reputation) })
			below = slices.DeleteFunc(below, func(c Candidate) bool { return c.Reputation < best.Reputation })
			return below, fmt.Sprintf("every worker with skill %s is below the reputation floor %.3f; the best of them (reputation %.3f) takes it",
				req.Type, p.MinReputation, best.Reputation)
		}
	}
	// Nobody is eligible: now it is worth saying why, worker by worker.
	var rejected []string
	withSkill := 0
	for _, c := range cands {
		if c.Worker.HasSkill(req.Type) {
			withSkill++
			_, why := check(req, c, p, true)
			rejected = append(rejected, c.Worker.ID+": "+why)
		}
	}
	return nil, describeNone(req, withSkill, rejected)
}

// eligibleOf is the candidates that pass every filter, without those in
// req.Exclude when others pass.
func eligibleOf(req Request, cands []Candidate, p Policy) []Candidate {
	eligible := make([]Candidate, 0, len(cands))
	for _, c := range cands {
		if ok, _ := check(req, c, p, false); ok {
			eligible = append(eligible, c)
		}
	}
	if len(eligible) > 0 && len(req.Exclude) > 0 {
		fresh := slices.DeleteFunc(slices.Clone(eligible), func(c Candidate) bool { return slices.Contains(req.Exclude, c.Worker.ID) })
		if len(fresh) > 0 {
			eligible = fresh
		}
	}
	return eligible
}

func describeNone(req Request, withSkill int, rejected []string) string {
	var sb strings.Builder
	sb.WriteString("no worker with skill " + req.Type)
	if len(req.Requirements) > 0 {
		sb.WriteString(" and " + Describe(req.Requirements))
	}
	if req.MaxCost > 0 {
		fmt.Fprintf(&sb, " at a price up to %g", req.MaxCost)
	}
	if withSkill == 0 {
		sb.WriteString(" is registered")
		return sb.String()
	}
	sb.WriteString(" is available")
	sort.Strings(rejected)
	if len(rejected) > 5 {
		rejected = append(rejected[:5], fmt.Sprintf("and %d more", len(rejected)-5))
	}
	sb.WriteString(" (" + strings.Join(rejected, "; ") + ")")
	return sb.String()
}

// Choose picks one of the eligible candidates with the strategy and says
// why. next returns the next value of the task type's shared round-robin
// counter.
func Choose(strategy blueprint.Strategy, req Request, eligible []Candidate, p Policy, next func() (int64, error)) (Candidate, string, error) {
	if len(eligible) == 0 {
		return Candidate{}, "", fmt.Errorf("no eligible worker")
	}
	pool := eligible
	n := len(pool)
	switch strategy {
	case blueprint.RoundRobin:
		pool = slices.Clone(eligible)
		sort.Slice(pool, func(i, j int) bool { return pool[i].Worker.ID < pool[j].Worker.ID })
		v, err := next()
		if err != nil {
			return Candidate{}, "", fmt.Errorf("round robin counter: %w", err)
		}
		i := int(((v % int64(n)) + int64(n)) % int64(n))
		return pool[i], fmt.Sprintf("round robin: turn %d of %d workers", i+1, n), nil
	case blueprint.LeastConnections:
		best := minBy(pool, func(a, b Candidate) bool {
			return a.Load < b.Load || (a.Load == b.Load && a.Cost(req.Type) < b.Cost(req.Type))
		})
		return best, fmt.Sprintf("least connections: %d tasks", best.Load), nil
	case blueprint.Cheapest:
		best := minBy(pool, cheaper(req.Type))
		return best, fmt.Sprintf("cheapest: price %g", best.Cost(req.Type)), nil
	case blueprint.BestValue:
		best := minBy(pool, func(a, b Candidate) bool {
			va, vb := Value(a, req.Type), Value(b, req.Type)
			if va != vb {
				return va < vb
			}
			return cheaper(req.Type)(a, b)
		})
		return best, fmt.Sprintf("best value: price %g / reputation %.3f = %.6g", best.Cost(req.Type), best.Reputation, Value(best, req.Type)), nil
	case blueprint.Overflow:
		pool = slices.Clone(eligible)
		sort.Slice(pool, func(i, j int) bool {
			ci, cj := pool[i].Cost(req.Type), pool[j].Cost(req.Type)
			return ci < cj || (ci == cj && pool[i].Worker.ID < pool[j].Worker.ID)
		})
		limit := max(p.SoftLimit, 1)
		for _, c := range pool {
			if c.Load < limit {
				return c, fmt.Sprintf("overflow: cheapest with fewer than %d tasks (price %g)", limit, c.Cost(req.Type)), nil
			}
		}
		best := minBy(pool, func(a, b Candidate) bool { return a.Load < b.Load })
		return best, fmt.Sprintf("overflow: every worker has %d+ tasks; least loaded", limit), nil
	}
	// default: prefer workers with the skill hot, then cheapest, then best
	// reputation, then least loaded.
	var hot []Candidate
	for _, c := range pool {
		if slices.Contains(c.Worker.HotSkills, req.Type) {
			hot = append(hot, c)
		}
	}
	why := "default"
	if len(hot) > 0 {
		pool, why = hot, "default: skill hot in cache"
	}
	best := minBy(pool, cheaper(req.Type))
	return best, fmt.Sprintf("%s, price %g, reputation %.3f", why, best.Cost(req.Type), best.Reputation), nil
}

// Value is the best_value score: price divided by reputation, lower is
// better. A worker with reputation 0 scores +Inf.
func Value(c Candidate, skill string) float64 {
	if c.Reputation <= 0 {
		return inf
	}
	return c.Cost(skill) / c.Reputation
}

// cheaper orders by price, then reputation (higher first), then load.
func cheaper(skill string) func(a, b Candidate) bool {
	return func(a, b Candidate) bool {
		ca, cb := a.Cost(skill), b.Cost(skill)
		if ca != cb {
			return ca < cb
		}
		if a.Reputation != b.Reputation {
			return a.Reputation > b.Reputation
		}
		return a.Load < b.Load
	}
}

// minBy returns the minimum of pool under less; full ties go to the
// smallest worker id, so the choice does not depend on the pool's order.
func minBy(pool []Candidate, less func(a, b Candidate) bool) Candidate {
	best := pool[0]
	for _, c := range pool[1:] {
		if less(c, best) || (!less(best, c) && c.Worker.ID < best.Worker.ID) {
			best = c
		}
	}
	return best
}
