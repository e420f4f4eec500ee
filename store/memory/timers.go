package memory

import (
	"container/heap"
	"context"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

type timerEntry struct {
	at  time.Time
	key string
}

// timerHeap is a min-heap by time. Entries whose time no longer matches the
// timer map are stale and skipped.
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (s *Store) addTimer(t store.Timer) {
	key := t.Key()
	s.timers[key] = t
	heap.Push(&s.timerHeap, timerEntry{at: t.At, key: key})
}

// dropStale pops stale entries off the top of the heap.
func (s *Store) dropStale() {
	for s.timerHeap.Len() > 0 {
		top := s.timerHeap[0]
		if t, ok := s.timers[top.key]; ok && t.At.Equal(top.at) {
			return
		}
		heap.Pop(&s.timerHeap)
	}
}

// AddTimers implements store.Timers.
func (s *Store) AddTimers(_ context.Context, timers ...store.Timer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range timers {
		s.addTimer(t)
	}
	return nil
}

// DueTimers implements store.Timers.
func (s *Store) DueTimers(_ context.Context, now time.Time, limit int, visibility time.Duration) ([]store.Timer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []store.Timer
	for len(due) < limit {
		s.dropStale()
		if s.timerHeap.Len() == 0 || s.timerHeap[0].at.After(now) {
			break
		}
		top := heap.Pop(&s.timerHeap).(timerEntry)
		t := s.timers[top.key]
		due = append(due, t)
		t.At = now.Add(visibility)
		s.addTimer(t)
	}
	return due, nil
}

// DeleteTimers implements store.Timers.
func (s *Store) DeleteTimers(_ context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.timers, k)
	}
	return nil
}

// NextTimer implements store.Timers.
func (s *Store) NextTimer(context.Context) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropStale()
	if s.timerHeap.Len() == 0 {
		return time.Time{}, false, nil
	}
	return s.timerHeap[0].at, true, nil
}
