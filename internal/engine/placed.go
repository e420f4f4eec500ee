package engine

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// placed remembers, per queue, the tasks this process queued there, in
// queue order: those near the head of a worker's or a pending queue are
// most likely this process's first ones, so a poll can pick one up with
// its claim in one write (see Engine.pickupPlaced) instead of a claim,
// then a write. Each poll takes a different task (take), so that polls
// at once do not race for one. A guess that misses (another process's
// tasks come first, the task was stolen, withdrawn or pulled by another
// process) costs that write; after a miss in a worker's queue the
// worker's polls claim first for a while, so that a deployment where
// guesses keep missing does not pay for them.
type placed struct {
	mu sync.Mutex
	m  map[string]*placedQueue
}

type placedQueue struct {
	tasks       []store.QueuedTask // by score, then task id, as the queue
	guessUntil  time.Time          // zero: guess; else no guesses before it
	lastTouched time.Time
}

const (
	// maxPlaced bounds the tasks remembered per queue (a backlog); beyond
	// it the latest are not remembered (their polls claim first).
	maxPlaced = 1 << 16
	// placedMissPause is how long a worker's polls claim first after a
	// guess in its queue missed.
	placedMissPause = time.Second
	// placedWithin is how near the head of its queue a guessed task must
	// be (store.Claim.Within): polls at once take the first tasks, which
	// their claims take in any order; a task of another process's waits
	// behind this process's at most that many.
	placedWithin = 64
	// placedIdle is how long a worker with no placements is remembered.
	placedIdle = time.Minute
)

func queueOrder(a, b store.QueuedTask) int {
	if c := cmp.Compare(a.Score, b.Score); c != 0 {
		return c
	}
	return cmp.Compare(a.Run.ID, b.Run.ID)
}

// write runs a job write that queues tasks, recording them first: a
// store may wake this process's polls before the write returns, and they
// should find the tasks here (their pickups wait for the job's lock,
// which the writer holds). A write that fails takes them back.
func (p *placed) write(tasks []store.QueuedTask, write func() error) error {
	if len(tasks) == 0 {
		return write()
	}
	now := time.Now()
	p.mu.Lock()
	for _, qt := range tasks {
		p.insert(qt.Queue(), qt, now)
	}
	p.mu.Unlock()
	err := write()
	if err != nil {
		p.mu.Lock()
		for _, qt := range tasks {
			p.remove(qt)
		}
		p.mu.Unlock()
	}
	return err
}

// remove drops a task from its queue's list, if there; p.mu is held.
func (p *placed) remove(qt store.QueuedTask) {
	q := p.m[qt.Queue()]
	if q == nil {
		return
	}
	if i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder); found {
		q.tasks = slices.Delete(q.tasks, i, i+1)
	}
}

// insert adds a task to a queue's list; p.mu is held.
func (p *placed) insert(queue string, qt store.QueuedTask, now time.Time) {
	if p.m == nil {
		p.m = map[string]*placedQueue{}
	}
	q := p.m[queue]
	if q == nil {
		p.sweep(now)
		q = &placedQueue{}
		p.m[queue] = q
	}
	q.lastTouched = now
	if len(q.tasks) >= maxPlaced {
		return
	}
	qt = slim(qt)
	i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder)
	if found {
		q.tasks[i] = qt
		return
	}
	q.tasks = slices.Insert(q.tasks, i, qt)
}

// slim keeps of a queued task what a guess needs: where it is, which
// attempt, and what it asks of a worker (Engine.fitsPending), not its
// parameters.
func slim(qt store.QueuedTask) store.QueuedTask {
	r := qt.Run
	return store.QueuedTask{
		JobID: qt.JobID, Worker: qt.Worker, Score: qt.Score,
		Run: store.TaskRun{
			ID: r.ID, Attempt: r.Attempt, Branch: r.Branch, Excluded: r.Excluded,
			Spec: store.TaskSpec{Type: r.Spec.Type, Priority: r.Spec.Priority, MaxCost: r.Spec.MaxCost, Requirements: r.Spec.Requirements},
		},
	}
}

// sweep forgets queues idle for placedIdle; p.mu is held.
func (p *placed) sweep(now time.Time) {
	if len(p.m) < 64 {
		return
	}
	for name, q := range p.m {
		if len(q.tasks) == 0 && now.Sub(q.lastTouched) > placedIdle {
			delete(p.m, name)
		}
	}
}

// take removes and returns the first task this process queued in a queue,
// if any and its polls guess now.
func (p *placed) take(queue string) (store.QueuedTask, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[queue]
	if q == nil || len(q.tasks) == 0 || time.Now().Before(q.guessUntil) {
		return store.QueuedTask{}, false
	}
	qt := q.tasks[0]
	q.tasks = slices.Delete(q.tasks, 0, 1)
	return qt, true
}

// putBack returns a task taken but not tried (the worker may not run it).
func (p *placed) putBack(qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.insert(qt.Queue(), qt, time.Now())
}

// claimed records that a claim (store.TaskQueues.ClaimNext) took a task
// from a queue: the tasks before it in queue order are gone too, or the
// claim would have taken them.
func (p *placed) claimed(queue string, qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[queue]
	if q == nil {
		return
	}
	i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder)
	if found {
		i++
	}
	q.tasks = slices.Delete(q.tasks, 0, i)
}

// missed records that a guess in a worker's queue missed: its polls claim
// first for placedMissPause.
func (p *placed) missed(queue string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.m[queue]; q != nil {
		q.guessUntil = time.Now().Add(placedMissPause)
	}
}

// forget drops what is known of a worker's queue (it went offline).
func (p *placed) forget(worker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, store.WorkerQueue(worker))
}
