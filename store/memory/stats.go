package memory

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// stats holds store.Stats: counters per minute and series of samples.
type stats struct {
	mu      sync.Mutex
	minutes map[time.Time]map[string]int64
	series  map[string]*expiring[[]store.Sample]
}

// AddStats implements store.Stats.
func (s *Store) AddStats(_ context.Context, at time.Time, deltas map[string]int64) error {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.minutes == nil {
		st.minutes = map[time.Time]map[string]int64{}
	}
	now := time.Now()
	for m := range st.minutes { // few: one per minute of StatsRetention
		if now.Sub(m) > store.StatsRetention {
			delete(st.minutes, m)
		}
	}
	m := at.UTC().Truncate(time.Minute)
	if now.Sub(m) > store.StatsRetention {
		return nil // expired already, as in Redis
	}
	c := st.minutes[m]
	if c == nil {
		c = map[string]int64{}
		st.minutes[m] = c
	}
	for k, d := range deltas {
		c[k] += d
	}
	return nil
}

// StatsSince implements store.Stats.
func (s *Store) StatsSince(_ context.Context, from, to time.Time) (map[time.Time]map[string]int64, error) {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now()
	out := map[time.Time]map[string]int64{}
	for _, m := range store.StatsMinutes(from, to) {
		if c, ok := st.minutes[m]; ok && len(c) > 0 && now.Sub(m) <= store.StatsRetention {
			out[m] = maps.Clone(c)
		}
	}
	return out, nil
}

// AppendSample implements store.Stats.
func (s *Store) AppendSample(_ context.Context, series string, sm store.Sample, limit int, ttl time.Duration) error {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.series == nil {
		st.series = map[string]*expiring[[]store.Sample]{}
	}
	now := time.Now()
	for k, e := range st.series {
		if !e.alive(now) {
			delete(st.series, k)
		}
	}
	e := st.series[series]
	if e == nil {
		e = &expiring[[]store.Sample]{}
		st.series[series] = e
	}
	e.v = append(e.v, store.Sample{At: sm.At.UTC(), Value: sm.Value})
	if limit > 0 && len(e.v) > limit {
		e.v = slices.Clone(e.v[len(e.v)-limit:])
	}
	e.exp = expiry(ttl, now)
	return nil
}

// Samples implements store.Stats.
func (s *Store) Samples(_ context.Context, series string) ([]store.Sample, error) {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.series[series]
	if !ok || !e.alive(time.Now()) {
		return []store.Sample{}, nil
	}
	out := slices.Clone(e.v)
	slices.SortStableFunc(out, func(a, b store.Sample) int { return a.At.Compare(b.At) })
	return out, nil
}
