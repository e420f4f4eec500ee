package engine

import (
	"sync"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// recentJobs keeps a copy of the small jobs this process wrote last, so
// that the next write of one (the pickup after the create, the result
// after the pickup) starts without a store read. A copy is a guess, never
// the truth: the write's version check refuses it when another process
// wrote the job since, and a guess that leads to no write (a skip, an
// error) is decided again on a read, so a stale copy costs one round trip
// and changes no outcome.
type recentJobs struct {
	mu   sync.Mutex
	max  int // 0: keep nothing
	jobs map[string]*store.Job
}

func newRecentJobs(max int) *recentJobs {
	return &recentJobs{max: max, jobs: map[string]*store.Job{}}
}

// take removes and returns the copy of a job, if one is kept. The caller
// holds the job's lock, so nobody else in the process writes it meanwhile;
// it puts the job back once its write succeeded.
func (r *recentJobs) take(id string) *store.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.jobs[id]
	delete(r.jobs, id)
	return j
}

// put keeps a copy of a job just written, if it is worth keeping: a job
// that ended is written again rarely, and a large one is read in part.
func (r *recentJobs) put(j *store.Job) {
	if r.max <= 0 {
		return
	}
	keep := j.Loaded.All && !j.Status.Terminal() &&
		len(j.Tasks)+len(j.BranchResults)+len(j.DoneTasks)+len(j.Dispatches) <= store.SmallJob
	var c *store.Job
	if keep {
		c = j.Clone()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !keep {
		delete(r.jobs, j.ID)
		return
	}
	if _, ok := r.jobs[j.ID]; !ok && len(r.jobs) >= r.max {
		for id := range r.jobs { // any one: a miss costs a read
			delete(r.jobs, id)
			break
		}
	}
	r.jobs[j.ID] = c
}
