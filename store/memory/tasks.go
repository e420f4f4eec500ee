package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/google/btree"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// taskQueue keeps its tasks ordered by (Score, task id) in a B-tree, so
// that taking the head of a long backlog costs O(log n), not a slice
// shift. It holds the entries of Store.queued, which are never changed in
// place: a node moves pointers, not whole task records.
type taskQueue struct {
	items *btree.BTreeG[*store.QueuedTask]
}

func newTaskQueue() *taskQueue { return &taskQueue{items: btree.NewG(32, store.InQueueOrder)} }

func (s *Store) enqueue(t store.QueuedTask) {
	s.removeTask(t.Run.ID)
	t = t.Clone()
	name := t.Queue()
	q, ok := s.queues[name]
	if !ok {
		q = newTaskQueue()
		s.queues[name] = q
	}
	q.items.ReplaceOrInsert(&t)
	s.queued[t.Run.ID] = &t
	if t.Worker != "" {
		s.assigned[t.Worker]++
	}
	s.notifyQueue(name)
}

// removeTask takes a task out of its queue or running set.
func (s *Store) removeTask(id string) {
	if t, ok := s.queued[id]; ok {
		delete(s.queued, id)
		if t.Worker != "" {
			if s.assigned[t.Worker]--; s.assigned[t.Worker] <= 0 {
				delete(s.assigned, t.Worker)
			}
		}
		name := t.Queue()
		if q := s.queues[name]; q != nil {
			q.items.Delete(t)
			if q.items.Len() == 0 {
				delete(s.queues, name)
			}
		}
	}
	if w, ok := s.runningBy[id]; ok {
		delete(s.runningBy, id)
		delete(s.running[w], id)
		if len(s.running[w]) == 0 {
			delete(s.running, w)
		}
	}
}

// PeekTasks implements store.TaskQueues.
func (s *Store) PeekTasks(_ context.Context, queue string, limit int) ([]store.QueuedTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queue]
	if q == nil {
		return nil, nil
	}
	out := make([]store.QueuedTask, 0, min(limit, q.items.Len()))
	q.items.Ascend(func(t *store.QueuedTask) bool {
		if len(out) == limit {
			return false
		}
		out = append(out, t.Clone())
		return true
	})
	return out, nil
}

// ClaimTask implements store.TaskQueues.
func (s *Store) ClaimTask(_ context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.claim(taskID, workerID)
	if !ok {
		return nil, fmt.Errorf("queued task %s: %w", taskID, store.ErrNotFound)
	}
	return t, nil
}

// claim moves a queued task to a worker's running tasks; s.mu is held.
func (s *Store) claim(taskID, workerID string) (*store.QueuedTask, bool) {
	queued, ok := s.queued[taskID]
	if !ok {
		return nil, false
	}
	s.removeTask(taskID)
	t := *queued
	t.Worker = workerID
	s.run(t)
	out := t.Clone()
	return &out, true
}

// run puts a task in its worker's running set; s.mu is held.
func (s *Store) run(t store.QueuedTask) {
	if s.running[t.Worker] == nil {
		s.running[t.Worker] = map[string]store.QueuedTask{}
	}
	s.running[t.Worker][t.Run.ID] = t
	s.runningBy[t.Run.ID] = t.Worker
}

// checkClaims reports ErrNotHead unless every claim's task is among the
// first Within tasks of its queue (at least the first), not counting the
// tasks claimed before it; s.mu is held.
func (s *Store) checkClaims(claims []store.Claim) error {
	for i, c := range claims {
		claimed := func(id string) bool {
			return slices.ContainsFunc(claims[:i], func(b store.Claim) bool { return b.TaskID == id })
		}
		if s.nearHead(c.Queue, c.TaskID, c.Within, claimed) { // a task claimed already is skipped, not found
			continue
		}
		return fmt.Errorf("claim task %s from queue %s: %w", c.TaskID, c.Queue, store.ErrNotHead)
	}
	return nil
}

// nearHead reports whether a task is among the first within tasks of a
// queue (at least the first), skipping those claimed already; s.mu is
// held.
func (s *Store) nearHead(queue, taskID string, within int, claimed func(id string) bool) bool {
	q := s.queues[queue]
	if q == nil {
		return false
	}
	found, seen := false, 0
	q.items.Ascend(func(t *store.QueuedTask) bool {
		if claimed(t.Run.ID) {
			return true
		}
		seen++
		found = t.Run.ID == taskID
		return !found && seen < max(within, 1)
	})
	return found
}

// ClaimNext implements store.TaskQueues.
func (s *Store) ClaimNext(_ context.Context, queue, workerID string) (*store.QueuedTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queue]
	if q == nil {
		return nil, nil
	}
	first, ok := q.items.Min()
	if !ok {
		return nil, nil
	}
	t, _ := s.claim(first.Run.ID, workerID)
	return t, nil
}

// ReleaseTask implements store.TaskQueues.
func (s *Store) ReleaseTask(_ context.Context, workerID, taskID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningBy[taskID] == workerID {
		s.removeTask(taskID)
	}
	return nil
}

// RunningTasks implements store.TaskQueues.
func (s *Store) RunningTasks(_ context.Context, workerID string) ([]store.QueuedTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.QueuedTask, 0, len(s.running[workerID]))
	for _, t := range s.running[workerID] {
		out = append(out, t.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return store.InQueueOrder(&out[i], &out[j]) })
	return out, nil
}

// QueueLengths implements store.TaskQueues.
func (s *Store) QueueLengths(context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.queues))
	for name, q := range s.queues {
		out[name] = q.items.Len()
	}
	return out, nil
}

// Loads implements store.TaskQueues.
func (s *Store) Loads(context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.assigned)+len(s.running))
	for w, n := range s.assigned {
		out[w] = n
	}
	for w, tasks := range s.running {
		out[w] += len(tasks)
	}
	return out, nil
}

// watcher coalesces queue names for one WatchQueues caller.
type watcher struct {
	pending map[string]struct{}
	signal  chan struct{}
}

func (s *Store) notifyQueue(name string) {
	for w := range s.watchers {
		w.pending[name] = struct{}{}
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// WatchQueues implements store.TaskQueues.
func (s *Store) WatchQueues(ctx context.Context) (<-chan string, error) {
	w := &watcher{pending: map[string]struct{}{}, signal: make(chan struct{}, 1)}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	out := make(chan string)
	go func() {
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.watchers, w)
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.signal:
			}
			s.mu.Lock()
			names := make([]string, 0, len(w.pending))
			for n := range w.pending {
				names = append(names, n)
			}
			clear(w.pending)
			s.mu.Unlock()
			for _, n := range names {
				select {
				case out <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
