package store

import (
	"maps"
	"slices"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Clone returns a deep copy of the job. JSON-shaped values (maps, slices
// and scalars) are copied; the engine stores nothing else.
func (j *Job) Clone() *Job {
	if j == nil {
		return nil
	}
	c := *j
	c.InitialData = CloneMap(j.InitialData)
	c.Policy = CloneMap(j.Policy)
	c.Costs = maps.Clone(j.Costs)
	c.StateHistory = CloneMap(j.StateHistory)
	c.Result = CloneValue(j.Result)
	c.Client.Params = CloneMap(j.Client.Params)
	if j.FinishedAt != nil {
		t := *j.FinishedAt
		c.FinishedAt = &t
	}
	if j.Tasks != nil {
		c.Tasks = make(map[string]*TaskRun, len(j.Tasks))
		for id, t := range j.Tasks {
			c.Tasks[id] = t.Clone()
		}
	}
	c.Routes = maps.Clone(j.Routes)
	if j.BranchResults != nil {
		c.BranchResults = make(map[string]Result, len(j.BranchResults))
		for id, r := range j.BranchResults {
			c.BranchResults[id] = cloneResult(r)
		}
	}
	if j.LastResult != nil {
		r := cloneResult(*j.LastResult)
		c.LastResult = &r
	}
	if j.Approval != nil {
		a := *j.Approval
		a.Decisions = slices.Clone(a.Decisions)
		c.Approval = &a
	}
	c.DoneTasks = maps.Clone(j.DoneTasks)
	c.TraceContext = maps.Clone(j.TraceContext)
	c.Dispatches = slices.Clone(j.Dispatches)
	c.DataMetadata = CloneFileMetadata(j.DataMetadata)
	c.Loaded.Tasks = slices.Clone(j.Loaded.Tasks)
	c.Loaded.Branches = slices.Clone(j.Loaded.Branches)
	c.Loaded.Done = slices.Clone(j.Loaded.Done)
	return &c
}

// CloneFileMetadata deep-copies blob metadata by JSON path.
func CloneFileMetadata(m map[string]protocol.FileMetadata) map[string]protocol.FileMetadata {
	if m == nil {
		return nil
	}
	out := make(map[string]protocol.FileMetadata, len(m))
	for k, v := range m {
		v.Metadata = CloneMap(v.Metadata)
		out[k] = v
	}
	return out
}

// Clone returns a deep copy of the task run.
func (t *TaskRun) Clone() *TaskRun {
	if t == nil {
		return nil
	}
	c := *t
	c.Spec.Params = CloneMap(t.Spec.Params)
	c.Spec.Requirements = CloneMap(t.Spec.Requirements)
	c.Excluded = slices.Clone(t.Excluded)
	c.Blame = slices.Clone(t.Blame)
	c.TraceContext = maps.Clone(t.TraceContext)
	c.ParamsMetadata = CloneFileMetadata(t.ParamsMetadata)
	if t.PickedUpAt != nil {
		p := *t.PickedUpAt
		c.PickedUpAt = &p
	}
	if t.Deadline != nil {
		d := *t.Deadline
		c.Deadline = &d
	}
	if t.Decision != nil {
		d := *t.Decision
		c.Decision = &d
	}
	if t.LastError != nil {
		e := *t.LastError
		e.Details = CloneMap(e.Details)
		c.LastError = &e
	}
	return &c
}

// CloneResult deep-copies a task result.
func CloneResult(r Result) Result { return cloneResult(r) }

func cloneResult(r Result) Result {
	r.Data = CloneMap(r.Data)
	if r.Error != nil {
		e := *r.Error
		e.Details = CloneMap(e.Details)
		r.Error = &e
	}
	return r
}

// CloneMap deep-copies a JSON object.
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = CloneValue(v)
	}
	return out
}

// CloneValue deep-copies a JSON value.
func CloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return CloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = CloneValue(item)
		}
		return out
	}
	return v
}

// Clone returns a deep copy of the queued task.
func (q QueuedTask) Clone() QueuedTask {
	q.Run = *q.Run.Clone()
	return q
}

// Clone returns a copy of the worker record (its slices and maps are
// shared with the original only where they are never mutated).
func (w *Worker) Clone() *Worker {
	if w == nil {
		return nil
	}
	c := *w
	c.Skills = slices.Clone(w.Skills)
	c.AvailableSkills = slices.Clone(w.AvailableSkills)
	c.HotSkills = slices.Clone(w.HotSkills)
	c.CurrentTasks = slices.Clone(w.CurrentTasks)
	c.InstalledArtifacts = slices.Clone(w.InstalledArtifacts)
	c.InstalledSoftware = maps.Clone(w.InstalledSoftware)
	c.Metadata = CloneMap(w.Metadata)
	if w.Resources != nil {
		r := *w.Resources
		r.Devices = slices.Clone(r.Devices)
		r.Properties = CloneMap(r.Properties)
		c.Resources = &r
	}
	if w.Capabilities != nil {
		cp := *w.Capabilities
		cp.CostPerSkill = maps.Clone(cp.CostPerSkill)
		cp.Extra = CloneMap(cp.Extra)
		c.Capabilities = &cp
	}
	if w.Usage != nil {
		u := *w.Usage
		u.DevicesUsage = slices.Clone(u.DevicesUsage)
		c.Usage = &u
	}
	return &c
}
