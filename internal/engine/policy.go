package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// policyViolation names the first task of an action whose type the job's
// policy.allowed_skills leaves out, or is "" when the action keeps to it
// (or the job has no such policy).
func policyViolation(j *store.Job, action any) string {
	allowed, ok := AllowedSkills(j.Policy)
	if !ok {
		return ""
	}
	var tasks []blueprint.Task
	switch a := action.(type) {
	case blueprint.DispatchAction:
		tasks = []blueprint.Task{a.Task}
	case blueprint.ParallelAction:
		tasks = a.Tasks
	}
	for _, t := range tasks {
		if !slices.Contains(allowed, t.Type) {
			return fmt.Sprintf("state %q dispatches task type %q, which the job's policy does not allow (allowed_skills: %v)", j.CurrentState, t.Type, allowed)
		}
	}
	return ""
}

// AllowedSkills returns a policy's allowed_skills, and whether it has
// them. The API checks the policy when the job is created: a list of
// strings, not empty.
func AllowedSkills(policy map[string]any) ([]string, bool) {
	list, ok := policy["allowed_skills"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out, true
}

// addCosts adds a result's costs that are finite numbers, not negative, to
// the job's and returns them (nil when there are none): the one place job
// costs change.
func addCosts(j *store.Job, reported map[string]any) map[string]float64 {
	var costs map[string]float64
	for name, v := range reported {
		f, ok := v.(float64)
		if n, isNum := v.(json.Number); isNum {
			f, ok = numberValue(n)
		}
		if !ok || name == "" || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if costs == nil {
			costs = map[string]float64{}
		}
		costs[name] = f
	}
	if costs == nil {
		return nil
	}
	if j.Costs == nil {
		j.Costs = make(map[string]float64, len(costs))
	}
	for name, f := range costs {
		j.Costs[name] += f
	}
	return costs
}

func numberValue(n json.Number) (float64, bool) {
	f, err := n.Float64()
	return f, err == nil
}
