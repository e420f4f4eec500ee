package memory

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// PutWorker implements store.Workers.
func (s *Store) PutWorker(_ context.Context, w *store.Worker, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := w.Clone()
	c.ExpiresAt = time.Now().Add(ttl)
	s.workers[w.ID] = c
	return nil
}

func (s *Store) liveWorker(id string, now time.Time) *store.Worker {
	w, ok := s.workers[id]
	if !ok || !now.Before(w.ExpiresAt) {
		return nil
	}
	return w
}

// GetWorker implements store.Workers.
func (s *Store) GetWorker(_ context.Context, id string) (*store.Worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.liveWorker(id, time.Now())
	if w == nil {
		return nil, fmt.Errorf("worker %s: %w", id, store.ErrNotFound)
	}
	return w.Clone(), nil
}

// ListWorkers implements store.Workers.
func (s *Store) ListWorkers(context.Context) ([]*store.Worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]*store.Worker, 0, len(s.workers))
	for id := range s.workers {
		if w := s.liveWorker(id, now); w != nil {
			out = append(out, w.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TouchWorker implements store.Workers.
func (s *Store) TouchWorker(_ context.Context, id string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	w := s.liveWorker(id, now)
	if w == nil {
		return false, nil
	}
	w.ExpiresAt = now.Add(ttl)
	w.LastSeen = now
	return true, nil
}

// DeleteWorker implements store.Workers.
func (s *Store) DeleteWorker(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.workers, id)
	return nil
}

// ExpiredWorkers implements store.Workers.
func (s *Store) ExpiredWorkers(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []string
	for id, w := range s.workers {
		if !now.Before(w.ExpiresAt) {
			out = append(out, id)
			delete(s.workers, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Reputations implements store.Workers.
func (s *Store) Reputations(_ context.Context, ids ...string) (map[string]float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]float64, len(ids))
	for _, id := range ids {
		if r, ok := s.reputation[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

// WorkerFigures implements store.Workers.
func (s *Store) WorkerFigures(ctx context.Context, ids ...string) (store.WorkerFigures, error) {
	reps, _ := s.Reputations(ctx, ids...)
	loads, _ := s.Loads(ctx)
	return store.WorkerFigures{Reputations: reps, Loads: loads}, nil
}

// AdjustReputation implements store.Workers.
func (s *Store) AdjustReputation(_ context.Context, id string, delta, initial, floor, ceil float64) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	after, _ := s.adjustReputation(id, delta, initial, floor, ceil)
	return after, nil
}

// adjustReputation is AdjustReputation under the caller's lock; it also
// returns the reputation before (initial when the worker had none).
func (s *Store) adjustReputation(id string, delta, initial, floor, ceil float64) (after, before float64) {
	before, ok := s.reputation[id]
	if !ok {
		before = initial
	}
	after = min(max(before+delta, floor), ceil)
	s.reputation[id] = after
	return after, before
}

// SetReputation implements store.Workers.
func (s *Store) SetReputation(_ context.Context, id string, value float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reputation[id] = value
	return nil
}
