package engine

import (
	"context"
	"strings"
	"sync"

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
}

func newHub() *hub { return &hub{subs: map[string]map[*subscription]struct{}{}} }

func (h *hub) subscribe(queues []string) *subscription {
	s := &subscription{queues: queues, wake: make(chan struct{}, 1)}
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
