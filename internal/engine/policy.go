package engine

import (
	"fmt"
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
