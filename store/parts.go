package store

import "slices"

// Parts tells what a read of a job loaded besides its header. A job's
// outstanding tasks (Tasks), the results of its ended branches
// (BranchResults), the final statuses of its tasks (DoneTasks) and its
// dispatch decisions (Dispatches) are records of their own, so that a
// result or a pickup reads and writes a few records whatever the width of a
// fan-out. GetJob loads every part; LoadJob the header and the tasks
// asked for. A write replaces what was loaded: a loaded task that is gone
// from the copy is deleted, a record the copy holds and did not load is
// added (see Job.Changes).
type Parts struct {
	All        bool     // every part was loaded
	Tasks      []string // ids of the outstanding tasks loaded
	Branches   []string // ids of the branch results loaded
	Done       []string // ids of the final statuses loaded
	Dispatches int      // how many dispatches were loaded (the first ones)
}

// PartChanges is what a write of a job does to its part records.
type PartChanges struct {
	PutTasks       []*TaskRun
	DeleteTasks    []string
	PutBranches    []string // ids in Job.BranchResults
	DeleteBranches []string
	PutDone        []string // ids in Job.DoneTasks
	AddDispatches  []Dispatch
}

// Changes compares a job with what its read loaded. Every task present is
// written (a handler may have changed any of them); branch results and
// final statuses, which never change once recorded, only when new.
func (j *Job) Changes() PartChanges {
	var c PartChanges
	for _, id := range sortedKeys(j.Tasks) {
		c.PutTasks = append(c.PutTasks, j.Tasks[id])
	}
	for _, id := range j.Loaded.Tasks {
		if _, ok := j.Tasks[id]; !ok {
			c.DeleteTasks = append(c.DeleteTasks, id)
		}
	}
	loaded := setOf(j.Loaded.Branches)
	for _, id := range sortedKeys(j.BranchResults) {
		if !loaded[id] {
			c.PutBranches = append(c.PutBranches, id)
		}
	}
	for _, id := range j.Loaded.Branches {
		if _, ok := j.BranchResults[id]; !ok {
			c.DeleteBranches = append(c.DeleteBranches, id)
		}
	}
	loaded = setOf(j.Loaded.Done)
	for _, id := range sortedKeys(j.DoneTasks) {
		if !loaded[id] {
			c.PutDone = append(c.PutDone, id)
		}
	}
	if n := j.Loaded.Dispatches; n < len(j.Dispatches) {
		c.AddDispatches = j.Dispatches[n:]
	}
	return c
}

// sortedKeys is slices.Sorted(maps.Keys(m)) in one allocation of the
// right size (none for an empty map): it runs on every write of a job.
func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func setOf(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil // reads as empty
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// Header returns a shallow copy of the job without its parts: what a store
// keeps as the job's own record.
func (j *Job) Header() *Job {
	h := *j
	h.Tasks, h.BranchResults, h.DoneTasks, h.Dispatches = nil, nil, nil, nil
	h.Loaded = Parts{}
	return &h
}

// Written records, after a successful write, that the parts the copy holds
// are what the store has: a later write from the same copy changes only
// what changed since.
func (j *Job) Written() {
	j.Loaded = Parts{
		All:        j.Loaded.All,
		Tasks:      sortedKeys(j.Tasks),
		Branches:   sortedKeys(j.BranchResults),
		Done:       sortedKeys(j.DoneTasks),
		Dispatches: len(j.Dispatches),
	}
}

// Assemble returns a job from its header and parts, as GetJob does.
func Assemble(header *Job, tasks map[string]*TaskRun, branches map[string]Result,
	done map[string]string, dispatches []Dispatch) *Job {
	j := *header
	j.Tasks, j.BranchResults, j.DoneTasks, j.Dispatches = tasks, branches, done, dispatches
	j.Written()
	j.Loaded.All = true
	return &j
}

// HasInlineParts reports whether a stored header still carries parts inline,
// as jobs written before parts were records of their own did. Such a job
// is read whole (MergeInline) and its next write moves them to records.
func (j *Job) HasInlineParts() bool {
	return j.Tasks != nil || j.BranchResults != nil || j.DoneTasks != nil || j.Dispatches != nil
}

// MergeInline adds a whole job's inline parts (see HasInlineParts) to the
// records read, as parts that were not loaded from records, so that the
// next write stores them as records and drops them from the header.
func MergeInline(inline, whole *Job) {
	for id, t := range inline.Tasks {
		if _, ok := whole.Tasks[id]; !ok {
			if whole.Tasks == nil {
				whole.Tasks = map[string]*TaskRun{}
			}
			whole.Tasks[id] = t
		}
	}
	for id, r := range inline.BranchResults {
		if _, ok := whole.BranchResults[id]; !ok {
			if whole.BranchResults == nil {
				whole.BranchResults = map[string]Result{}
			}
			whole.BranchResults[id] = r
		}
	}
	for id, st := range inline.DoneTasks {
		if _, ok := whole.DoneTasks[id]; !ok {
			if whole.DoneTasks == nil {
				whole.DoneTasks = map[string]string{}
			}
			whole.DoneTasks[id] = st
		}
	}
	if len(inline.Dispatches) > 0 {
		// Inline dispatches are older than any record, and none is a
		// record yet: all of them are written on the next write.
		whole.Dispatches = append(slices.Clone(inline.Dispatches), whole.Dispatches...)
		whole.Loaded.Dispatches = 0
	}
}

// PartCount is the number of part records the copy holds.
func (j *Job) PartCount() int {
	return len(j.Tasks) + len(j.BranchResults) + len(j.DoneTasks) + len(j.Dispatches)
}

// View returns what LoadJob returns for a job of more than SmallJob part
// records, from a whole copy: a copy of the header, with the named tasks
// and the final statuses of those that ended.
func (j *Job) View(taskIDs ...string) *Job {
	v := j.Header().Clone()
	v.LoadTasks(j.Tasks, j.DoneTasks, taskIDs...)
	return v
}

// LoadTasks adds to a copy of a header the named tasks among tasks (as
// copies) and the final statuses among done of those that ended, and
// records them as loaded: a read of some tasks of a large job.
func (j *Job) LoadTasks(tasks map[string]*TaskRun, done map[string]string, taskIDs ...string) {
	for _, id := range taskIDs {
		if run, ok := tasks[id]; ok {
			if j.Tasks == nil {
				j.Tasks = map[string]*TaskRun{}
			}
			j.Tasks[id] = run.Clone()
			j.Loaded.Tasks = append(j.Loaded.Tasks, id)
		}
		if st, ok := done[id]; ok {
			if j.DoneTasks == nil {
				j.DoneTasks = map[string]string{}
			}
			j.DoneTasks[id] = st
			j.Loaded.Done = append(j.Loaded.Done, id)
		}
	}
}

// Apply brings a whole copy up to a write of a view of it: the view's
// header (copied) and version, and the changes the write made to the part
// records (ch, from the view's Changes before the write). It costs the
// changes, not the copy: call Written before writing from the copy itself.
func (j *Job) Apply(view *Job, ch PartChanges) {
	tasks, branches, done, dispatches := j.Tasks, j.BranchResults, j.DoneTasks, j.Dispatches
	*j = *view.Header().Clone()
	for _, t := range ch.PutTasks {
		if tasks == nil {
			tasks = map[string]*TaskRun{}
		}
		tasks[t.ID] = t.Clone()
	}
	for _, id := range ch.DeleteTasks {
		delete(tasks, id)
	}
	for _, id := range ch.PutBranches {
		if branches == nil {
			branches = map[string]Result{}
		}
		branches[id] = cloneResult(view.BranchResults[id])
	}
	for _, id := range ch.DeleteBranches {
		delete(branches, id)
	}
	for _, id := range ch.PutDone {
		if done == nil {
			done = map[string]string{}
		}
		done[id] = view.DoneTasks[id]
	}
	dispatches = append(dispatches, ch.AddDispatches...)
	j.Tasks, j.BranchResults, j.DoneTasks, j.Dispatches = tasks, branches, done, dispatches
	// Whole, and equal to the store; what it loaded is listed (Written)
	// only before a write from the copy itself, which costs its size.
	j.Loaded = Parts{All: true}
}
