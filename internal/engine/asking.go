package engine

import (
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// maxPollHold bounds how long a poll leaves a worker's tasks to its
// results that ask for the next task (see asking): a result that takes
// long to commit (a large one offloaded, say) does not keep a task from an
// idle poll for longer.
const maxPollHold = 50 * time.Millisecond

// asking counts, per worker, the results in flight in this process that
// will ask for the worker's next task (protocol.QueryNext). While one is
// in flight, a poll of the worker's leaves it the tasks this process
// queued in the worker's own queue, as long as they are no more than the
// results asking: a result takes its task with its answer, where the poll
// would cost the worker an exchange of its own for it (round 2's
// twenty-first stop in BENCHMARKS).
type asking struct {
	mu sync.Mutex
	m  map[string]*askers
}

type askers struct {
	n     int  // results in flight
	held  bool // a poll held back since the last look-again
	woken bool // a held poll was woken meanwhile, for a task the results may not take
}

func (a *asking) begin(worker string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*askers{}
	}
	s := a.m[worker]
	if s == nil {
		s = &askers{}
		a.m[worker] = s
	}
	s.n++
}

// end ends a result's ask. It reports whether a poll held back should
// look again now: one was woken meanwhile (by another orchestrator's
// task, say, or a pending one: the results take neither while a poll
// waits), or the results still asking no longer cover the tasks queued
// (placed reports how many).
func (a *asking) end(worker string, placed func() int) (lookAgain bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m[worker]
	s.n--
	lookAgain = s.held && (s.woken || placed() > s.n)
	if lookAgain {
		s.held, s.woken = false, false
	}
	if s.n == 0 {
		delete(a.m, worker)
	}
	return lookAgain
}

// hold reports whether a poll of the worker should leave the tasks this
// process queued for it (placed reports how many) to the results asking:
// when there are some, and no more than the results.
func (a *asking) hold(worker string, placed func() int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m[worker]
	if s == nil {
		return false
	}
	if n := placed(); n == 0 || n > s.n {
		return false
	}
	s.held = true
	return true
}

// woke records that a held poll of the worker was woken: a task the
// results may not take may wait (see end).
func (a *asking) woke(worker string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.m[worker]; s != nil {
		s.woken = true
	}
}

// AskingFor tells the engine that a result of the worker's is in flight
// and will ask for its next task (TakeTask); call release once it has
// asked, or will not. Until then a poll of the worker's in this process
// leaves it the task this process queued for the worker (see asking).
// release may be called more than once.
func (e *Engine) AskingFor(workerID string) (release func()) {
	e.asking.begin(workerID)
	var once sync.Once
	return func() {
		once.Do(func() {
			queue := store.WorkerQueue(workerID)
			if e.asking.end(workerID, func() int { return e.placed.count(queue) }) {
				e.hub.notifyOne(queue)
			}
		})
	}
}
