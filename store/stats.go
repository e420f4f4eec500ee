package store

import (
	"context"
	"time"
)

// Stats keeps the orchestrator's own figures for the console's charts, in
// the live store so that every orchestrator of a deployment adds to and
// reads the same ones (no Prometheus needed): counters per minute, kept
// StatsRetention, and bounded series of samples (a worker's reputation).
type Stats interface {
	// AddStats adds deltas to the named counters of the minute that holds
	// at (UTC). Counters of a minute expire StatsRetention after it.
	AddStats(ctx context.Context, at time.Time, deltas map[string]int64) error
	// StatsSince returns the counters of each minute from the one holding
	// from to the one holding to (at most MaxStatsMinutes), keyed by the
	// minute's start (UTC); minutes with no counter are absent.
	StatsSince(ctx context.Context, from, to time.Time) (map[time.Time]map[string]int64, error)
	// AppendSample adds a sample to a series, keeps the newest limit, and
	// keeps the series ttl after its last sample.
	AppendSample(ctx context.Context, series string, s Sample, limit int, ttl time.Duration) error
	// Samples returns a series, oldest first (by At); none: empty.
	Samples(ctx context.Context, series string) ([]Sample, error)
}

// Sample is one value of a series.
type Sample struct {
	At    time.Time
	Value float64
}

// StatsRetention is how long the counters of a minute are kept;
// MaxStatsMinutes bounds the minutes one StatsSince reads.
const (
	StatsRetention  = 2 * time.Hour
	MaxStatsMinutes = 24 * 60
)

// StatsMinutes returns the minutes (UTC) from the one holding from to the
// one holding to, at most MaxStatsMinutes (the latest), for backends.
func StatsMinutes(from, to time.Time) []time.Time {
	first, last := from.UTC().Truncate(time.Minute), to.UTC().Truncate(time.Minute)
	if last.Sub(first) >= MaxStatsMinutes*time.Minute {
		first = last.Add(-(MaxStatsMinutes - 1) * time.Minute)
	}
	var out []time.Time
	for m := first; !m.After(last); m = m.Add(time.Minute) {
		out = append(out, m)
	}
	return out
}
