package engine

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// placed remembers, per worker, the tasks this process queued for it, in
// queue order: the head of the worker's queue is most likely the first of
// them, so a poll can pick it up with its claim in one write (see
// Engine.pickupPlaced) instead of a claim, then a write. A guess that
// misses (another process queued a task that comes first, the task was
// stolen or withdrawn) costs that write; the worker's polls then claim
// first for a while, so that a deployment where guesses keep missing
// does not pay for them.
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
	// maxPlaced bounds the tasks remembered per worker; beyond it the
	// latest are not remembered (their polls claim first).
	maxPlaced = 1024
	// placedMissPause is how long a worker's polls claim first after a
	// guess missed.
	placedMissPause = time.Second
	// placedIdle is how long a worker with no placements is remembered.
	placedIdle = time.Minute
)

func queueOrder(a, b store.QueuedTask) int {
	if c := cmp.Compare(a.Score, b.Score); c != 0 {
		return c
	}
	return cmp.Compare(a.Run.ID, b.Run.ID)
}

// add records the tasks a commit queued for workers.
func (p *placed) add(tasks []store.QueuedTask) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, qt := range tasks {
		if qt.Worker == "" {
			continue
		}
		if p.m == nil {
			p.m = map[string]*placedQueue{}
		}
		q := p.m[qt.Worker]
		if q == nil {
			p.sweep(now)
			q = &placedQueue{}
			p.m[qt.Worker] = q
		}
		q.lastTouched = now
		if len(q.tasks) >= maxPlaced {
			continue
		}
		i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder)
		if found {
			q.tasks[i] = qt // queued again (a retry keeps its id)
			continue
		}
		q.tasks = slices.Insert(q.tasks, i, qt)
	}
}

// sweep forgets workers idle for placedIdle; p.mu is held.
func (p *placed) sweep(now time.Time) {
	if len(p.m) < 64 {
		return
	}
	for w, q := range p.m {
		if len(q.tasks) == 0 && now.Sub(q.lastTouched) > placedIdle {
			delete(p.m, w)
		}
	}
}

// guess returns the task likely to head the worker's queue, if any and
// the worker's polls guess now.
func (p *placed) guess(worker string) (store.QueuedTask, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[worker]
	if q == nil || len(q.tasks) == 0 || time.Now().Before(q.guessUntil) {
		return store.QueuedTask{}, false
	}
	return q.tasks[0], true
}

// claimed records that the worker took a task from its queue, by a guess
// or a claim: the tasks before it in queue order are gone too, or the
// claim would have taken them.
func (p *placed) claimed(worker string, qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[worker]
	if q == nil {
		return
	}
	i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder)
	if found {
		i++
	}
	q.tasks = slices.Delete(q.tasks, 0, i)
}

// missed records that a guess missed: the task is forgotten, and the
// worker's polls claim first for placedMissPause.
func (p *placed) missed(worker string, qt store.QueuedTask) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.m[worker]
	if q == nil {
		return
	}
	if i, found := slices.BinarySearchFunc(q.tasks, qt, queueOrder); found {
		q.tasks = slices.Delete(q.tasks, i, i+1)
	}
	q.guessUntil = time.Now().Add(placedMissPause)
}

// forget drops what is known of a worker's queue (it went offline).
func (p *placed) forget(worker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, worker)
}
