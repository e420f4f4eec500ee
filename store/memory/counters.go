package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func expiry(ttl time.Duration, now time.Time) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (s *Store) counter(key string, expireAt, now time.Time) *expiring[int64] {
	c, ok := s.counters[key]
	if !ok || !c.alive(now) {
		c = &expiring[int64]{exp: expireAt}
		s.counters[key] = c
	}
	return c
}

// Incr implements store.Counters.
func (s *Store) Incr(_ context.Context, key string, delta int64, expireAt time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counter(key, expireAt, time.Now())
	c.v += delta
	return c.v, nil
}

// IncrIfBelow implements store.Counters.
func (s *Store) IncrIfBelow(_ context.Context, key string, limit int64, expireAt time.Time) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counter(key, expireAt, time.Now())
	if c.v >= limit {
		return c.v, false, nil
	}
	c.v++
	return c.v, true, nil
}

// SetOnce implements store.Counters.
func (s *Store) SetOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if v, ok := s.values[key]; ok && v.alive(now) {
		return false, nil
	}
	s.values[key] = &expiring[string]{v: "1", exp: expiry(ttl, now)}
	return true, nil
}

// PutValue implements store.Counters.
func (s *Store) PutValue(_ context.Context, key, value string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = &expiring[string]{v: value, exp: expiry(ttl, time.Now())}
	return nil
}

// GetValue implements store.Counters.
func (s *Store) GetValue(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	if !ok || !v.alive(time.Now()) {
		return "", fmt.Errorf("value %s: %w", key, store.ErrNotFound)
	}
	return v.v, nil
}

// DeleteValue implements store.Counters.
func (s *Store) DeleteValue(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
	return nil
}

// AcquireLock implements store.Counters.
func (s *Store) AcquireLock(_ context.Context, name string, ttl time.Duration) (store.Lock, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if l, ok := s.locks[name]; ok && l.alive(now) {
		return store.Lock{}, false, nil
	}
	s.fence++
	s.locks[name] = &expiring[int64]{v: s.fence, exp: now.Add(ttl)}
	return store.Lock{Name: name, Token: s.fence}, true, nil
}

// RefreshLock implements store.Counters.
func (s *Store) RefreshLock(_ context.Context, l store.Lock, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cur, ok := s.locks[l.Name]
	if !ok || !cur.alive(now) || cur.v != l.Token {
		return false, nil
	}
	cur.exp = now.Add(ttl)
	return true, nil
}

// ReleaseLock implements store.Counters.
func (s *Store) ReleaseLock(_ context.Context, l store.Lock) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.locks[l.Name]; ok && cur.v == l.Token {
		delete(s.locks, l.Name)
	}
	return nil
}
