package engine

import (
	"context"
	"strings"
	"sync"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// hub wakes long-polling workers when a queue they read receives a task.
// Queue names come from the store, which sees enqueues of every process.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscription]struct{}
}

type subscription struct {
	queues []string
	wake   chan struct{}
	// handed brings a task dispatched straight to this poll (reserve),
	// or nil when the dispatch that reserved it was not committed.
	handed chan *protocol.TaskPayload
	state  pollState // guarded by hub.mu
}

// pollState says whether a dispatch may hand a poll its task.
type pollState int

const (
	pollBusy     pollState = iota // looking for a task itself
	pollParked                    // waiting: a dispatch may reserve it
	pollReserved                  // a dispatch will hand it a task, or nil
)

func newHub() *hub { return &hub{subs: map[string]map[*subscription]struct{}{}} }

func (h *hub) subscribe(queues []string) *subscription {
	s := &subscription{queues: queues, wake: make(chan struct{}, 1), handed: make(chan *protocol.TaskPayload, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, q := range queues {
		if h.subs[q] == nil {
			h.subs[q] = map[*subscription]struct{}{}
		}
		h.subs[q][s] = struct{}{}
	}
	return s
}

func (h *hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, q := range s.queues {
		delete(h.subs[q], s)
		if len(h.subs[q]) == 0 {
			delete(h.subs, q)
		}
	}
}

// notify wakes the polls waiting on a queue. A worker's own queue holds
// tasks for that worker alone, so one of its polls is woken (notifyOne);
// a pending queue wakes every poll, since workers differ in what they may
// run.
func (h *hub) notify(queue string) {
	if strings.HasPrefix(queue, store.WorkerQueue("")) {
		h.notifyOne(queue)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[queue] {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// notifyOne wakes one poll waiting on a queue, unless one is woken
// already; a poll that takes a task from its own queue calls it again, so
// that a burst of tasks wakes the worker's polls one after another.
func (h *hub) notifyOne(queue string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[queue] {
		select {
		case s.wake <- struct{}{}:
		default: // already woken: it will look
		}
		return
	}
}

// park marks a poll as waiting: from now on a dispatch to its worker may
// reserve it (reserve) and hand it the task.
func (h *hub) park(s *subscription) {
	h.mu.Lock()
	s.state = pollParked
	h.mu.Unlock()
}

// unpark ends a poll's wait; reserved says a dispatch reserved it, and its
// outcome comes on s.handed.
func (h *hub) unpark(s *subscription) (reserved bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reserved = s.state == pollReserved
	s.state = pollBusy
	return reserved
}

// reserve takes a parked poll of a worker's own queue for a task being
// dispatched to the worker, or returns nil when none waits here. The
// dispatch then hands the poll the task (s.handed <- payload) once it is
// committed, or nil.
func (h *hub) reserve(queue string) *subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[queue] {
		if s.state == pollParked {
			s.state = pollReserved
			return s
		}
	}
	return nil
}

// waiting reports whether a poll waits on queue.
func (h *hub) waiting(queue string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[queue]) > 0
}

// run forwards queue notifications until ctx ends.
func (h *hub) run(ctx context.Context, queues <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case q, ok := <-queues:
			if !ok {
				return
			}
			h.notify(q)
		}
	}
}
