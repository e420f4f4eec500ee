package engine

import (
	"sync"
	"time"

	"github.com/google/btree"

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
	tasks      *btree.BTreeG[*store.QueuedTask] // by score, then task id, as the queue
	guessUntil time.Time                        // zero: guess; else no guesses before it
	// claims counts the starts and ends of this process's claims in the
	// queue (of its head, claiming, or of one task, stealing), busy those
	// under way: a guess that misses while one ran may have lost its task
	// to it.
	claims      uint64
	busy        int
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
		p.insert(qt, now)
	}
	p.mu.Unlock()
	err := write()
	if err != nil {
		p.mu.Lock()
		for _, qt := range tasks {
			if q := p.m[qt.Queue()]; q != nil {
				q.tasks.Delete(&qt)
			}
		}
		p.mu.Unlock()
	}
	return err
}

// insert adds a task to its queue's list; p.mu is held.
func (p *placed) insert(qt store.QueuedTask, now time.Time) {
	if p.m == nil {
		p.m = map[string]*placedQueue{}
	}
	name := qt.Queue()
	q := p.m[name]
	if q == nil {
		p.sweep(now)
		q = &placedQueue{tasks: btree.NewG(16, store.InQueueOrder)}
		p.m[name] = q
	}
	q.lastTouched = now
	if q.tasks.Len() >= maxPlaced {
		return
	}
	entry := slim(qt)
	q.tasks.ReplaceOrInsert(&entry)
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
		if q.tasks.Len() == 0 && now.Sub(q.lastTouched) > placedIdle {
			delete(p.m, name)
		}
	}
}

// guess is a task taken to be picked up with its claim, and what was
// known of the queue's claims when it was taken (see missed).
type guess struct {
	task   store.QueuedTask
	claims uint64
}

// mayGuess reports whether polls may guess in the queue (nil: none noted)
// now.
func (q *placedQueue) mayGuess(now time.Time) bool {
	return q != nil && !now.Before(q.guessUntil)
}

// take removes and returns the first task this process queued in a queue,
// if any and its polls guess now.
func (p *placed) take(queue string) (guess, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[queue]
	if !q.mayGuess(time.Now()) {
		return guess{}, false
	}
	first, ok := q.tasks.DeleteMin()
	if !ok {
		return guess{}, false
	}
	return guess{task: *first, claims: q.claims}, true
}

// count returns how many tasks this process queued in queue that its
// polls may guess now.
func (p *placed) count(queue string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[queue]
	if !q.mayGuess(time.Now()) {
		return 0
	}
	return q.tasks.Len()
}

// earliest returns which of queues has the first task in queue order
// among those this process noted and may guess now.
func (p *placed) earliest(queues []string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var best *store.QueuedTask
	var name string
	for _, queue := range queues {
		q := p.m[queue]
		if !q.mayGuess(now) {
			continue
		}
		if first, ok := q.tasks.Min(); ok && (best == nil || store.InQueueOrder(first, best)) {
			best, name = first, queue
		}
	}
	return name, best != nil
}

// putBack returns a task taken but not tried (the worker may not run it).
func (p *placed) putBack(qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.insert(qt, time.Now())
}

// claimed records that a claim (store.TaskQueues.ClaimNext) took a task
// from a queue: the tasks before it in queue order are gone too, or the
// claim would have taken them.
func (p *placed) claimed(queue string, qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.m[queue]; q != nil {
		q.dropBefore(qt)
	}
}

// dropBefore drops the tasks up to qt in queue order; placed.mu is held.
func (q *placedQueue) dropBefore(qt store.QueuedTask) {
	for {
		first, ok := q.tasks.Min()
		if !ok || store.InQueueOrder(&qt, first) {
			return
		}
		q.tasks.DeleteMin()
	}
}

// missed records that a guess in a worker's queue missed: its polls claim
// first for placedMissPause. A claim of this process's that ran meanwhile
// may have taken the guessed task (it takes the head, and the head is
// likely a guessed one; a steal takes any task of the queue): such a miss
// is no sign of other processes' tasks and pauses nothing.
func (p *placed) missed(queue string, g guess) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.m[queue]; q != nil && q.busy == 0 && q.claims == g.claims {
		q.guessUntil = time.Now().Add(placedMissPause)
	}
}

// claiming records that a claim of a worker's queue head starts; done
// records its end, with the task it took (see claimed), if any.
func (p *placed) claiming(queue string) (done func(*store.QueuedTask)) {
	return p.claimStarts(queue, (*placedQueue).dropBefore)
}

// stealing is claiming for a claim of one task of a queue, not
// necessarily its head (a steal): its end forgets that task only.
func (p *placed) stealing(queue string) (done func(*store.QueuedTask)) {
	return p.claimStarts(queue, func(q *placedQueue, qt store.QueuedTask) { q.tasks.Delete(&qt) })
}

// claimStarts counts a claim of this process's in a queue (see missed)
// and returns what records its end, forget dropping what the claim took.
func (p *placed) claimStarts(queue string, forget func(*placedQueue, store.QueuedTask)) (done func(*store.QueuedTask)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[queue]
	if q == nil {
		return func(*store.QueuedTask) {} // no guesses there to lose
	}
	q.claims++
	q.busy++
	return func(qt *store.QueuedTask) {
		p.mu.Lock()
		defer p.mu.Unlock()
		q.claims++
		q.busy--
		if qt != nil {
			forget(q, *qt)
		}
	}
}

// forget drops what is known of a worker's queue (it went offline).
func (p *placed) forget(worker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, store.WorkerQueue(worker))
}
