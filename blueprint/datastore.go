package blueprint

import (
	"context"
	"sync"
)

// DataStore is a key/value store shared by all jobs of a blueprint, such as
// the showcase's user preferences. Implementations must be safe for
// concurrent use.
type DataStore interface {
	Get(ctx context.Context, key string) (value any, found bool, err error)
	Set(ctx context.Context, key string, value any) error
}

// MemoryStore is an in-process DataStore.
type MemoryStore struct {
	mu sync.RWMutex
	m  map[string]any
}

// NewMemoryStore returns a MemoryStore holding a copy of initial.
func NewMemoryStore(initial map[string]any) *MemoryStore {
	m := make(map[string]any, len(initial))
	for k, v := range initial {
		m[k] = v
	}
	return &MemoryStore{m: m}
}

// Get implements DataStore.
func (s *MemoryStore) Get(_ context.Context, key string) (any, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	return v, ok, nil
}

// Set implements DataStore.
func (s *MemoryStore) Set(_ context.Context, key string, value any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}
