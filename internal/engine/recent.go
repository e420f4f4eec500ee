package engine

import (
	"sync"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// recentJobs keeps a whole copy of the unfinished jobs this process wrote
// last, so that the next write of one (the pickup after the create, the
// result after the pickup, a branch's after another's) starts without a
// store read. A copy is a guess, never the truth: the write's version
// check refuses it when another process wrote the job since, and a guess
// that leads to no write (a skip, an error) is decided again on a read, so
// a stale copy costs one round trip and changes no outcome.
//
// A write of some tasks of a large job (a fan-out's branch) works on a
// view of the copy (store.Job.View), as it would on a read, and brings the
// copy up to date afterwards (store.Job.Apply): its cost stays that of the
// records it touches, whatever the width.
type recentJobs struct {
	mu       sync.Mutex
	maxJobs  int // 0: keep nothing
	maxParts int // part records kept in all
	parts    int
	jobs     map[string]*store.Job
}

// partsPerJob bounds the part records kept in all, as so many per job
// kept: 131,072 for the default 4,096 jobs, about 35 MiB of small records.
// A tighter bound left a backlog of 3,000 fanout-10 jobs a store read per
// branch result (round 2's tenth stop in BENCHMARKS).
const partsPerJob = 32

func newRecentJobs(maxJobs int) *recentJobs {
	return &recentJobs{maxJobs: maxJobs, maxParts: partsPerJob * max(maxJobs, 0), jobs: map[string]*store.Job{}}
}

// take removes and returns the copy of a job, if one is kept. The caller
// holds the job's lock, so nobody else in the process writes it meanwhile;
// it hands the job back (put or keep) once its write succeeded.
func (r *recentJobs) take(id string) *store.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.jobs[id]
	r.drop(id)
	return j
}

// copyAt returns a copy of the kept job when it is whole and at version,
// the version the store holds it at: what a read would return. The copy
// stays kept.
func (r *recentJobs) copyAt(id string, version int64) *store.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.jobs[id]
	if j == nil || version == 0 || j.Version != version || !j.Loaded.All {
		return nil
	}
	c := j.Clone()
	c.Written() // all it holds is stored (see Job.Apply)
	return c
}

// put keeps a copy of a job just written, if it is worth keeping, and
// forgets the copy it may hold of it otherwise (it is stale now).
func (r *recentJobs) put(j *store.Job) {
	if r.worth(j) {
		r.keep(j.Clone())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop(j.ID)
}

// keep keeps j itself, which nobody else holds; a job that ended, one read
// in part or one too large is dropped.
func (r *recentJobs) keep(j *store.Job) {
	if !r.worth(j) {
		return
	}
	n := j.PartCount()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop(j.ID)             // written from a read, not from the copy
	for id := range r.jobs { // any ones: a miss costs a read
		if len(r.jobs) < r.maxJobs && r.parts+n <= r.maxParts {
			break
		}
		r.drop(id)
	}
	r.jobs[j.ID] = j
	r.parts += n
}

// drop forgets the copy of a job, if one is kept; the caller holds mu.
func (r *recentJobs) drop(id string) {
	if old, ok := r.jobs[id]; ok {
		r.parts -= old.PartCount()
		delete(r.jobs, id)
	}
}

func (r *recentJobs) worth(j *store.Job) bool {
	return r.maxJobs > 0 && j.Loaded.All && !j.Status.Terminal() && j.PartCount() <= r.maxParts
}
