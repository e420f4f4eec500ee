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
// queued for the worker, up to one per result: the result takes its task
// with its answer, and the poll would cost the worker an exchange of its
// own for it (round 2's twenty-first stop in BENCHMARKS).
type asking struct {
	mu sync.Mutex
	m  map[string]*askers
}

type askers struct {
	n    int  // results in flight
	held bool // a poll held back meanwhile: it looks again when they end
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

// end ends a result's ask; it reports whether a poll held back by the
// results now ended should look again.
func (a *asking) end(worker string) (lookAgain bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m[worker]
	if s.n--; s.n > 0 {
		return false
	}
	delete(a.m, worker)
	return s.held
}

// hold reports whether a poll of the worker should leave the tasks this
// process queued for it (placed of them) to the results asking: when
// there are no more of those tasks than results.
func (a *asking) hold(worker string, placed int) bool {
	if placed == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m[worker]
	if s == nil || s.n < placed {
		return false
	}
	s.held = true
	return true
}

// AskingFor tells the engine that a result of the worker's is in flight
// and will ask for its next task (TakeTask); call release once it has
// asked, or will not. Until then the worker's polls leave it the task it
// would take (see asking). release may be called more than once.
func (e *Engine) AskingFor(workerID string) (release func()) {
	e.asking.begin(workerID)
	var once sync.Once
	return func() {
		once.Do(func() {
			if e.asking.end(workerID) {
				e.hub.notifyOne(store.WorkerQueue(workerID))
			}
		})
	}
}
