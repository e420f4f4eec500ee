package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// store.Stats: each minute's counters are a hash stats:<unix minute>
// (HINCRBY, expiring StatsRetention after the minute); a series is a list
// samples:<name> of "unixnanos value" (RPUSH, trimmed to its limit,
// expiring ttl after the last sample).

func (k keys) statsMinute(m time.Time) string {
	return k.base + "stats:" + strconv.FormatInt(m.Unix()/60, 10)
}

func (k keys) samples(series string) string { return k.base + "samples:" + series }

// AddStats implements store.Stats.
func (s *Store) AddStats(ctx context.Context, at time.Time, deltas map[string]int64) error {
	if len(deltas) == 0 {
		return nil
	}
	m := at.UTC().Truncate(time.Minute)
	key := s.g.statsMinute(m)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for name, d := range deltas {
			p.HIncrBy(ctx, key, name, d)
		}
		p.ExpireAt(ctx, key, m.Add(store.StatsRetention))
		return nil
	})
	return fail(ctx, "add stats", err)
}

// StatsSince implements store.Stats.
func (s *Store) StatsSince(ctx context.Context, from, to time.Time) (map[time.Time]map[string]int64, error) {
	minutes := store.StatsMinutes(from, to)
	cmds, err := pipelined(ctx, s.rdb, minutes, func(p goredis.Pipeliner, m time.Time) *goredis.MapStringStringCmd {
		return p.HGetAll(ctx, s.g.statsMinute(m))
	})
	if err != nil {
		return nil, fail(ctx, "read stats", err)
	}
	out := map[time.Time]map[string]int64{}
	for i, cmd := range cmds {
		vals := cmd.Val()
		if len(vals) == 0 {
			continue
		}
		c := make(map[string]int64, len(vals))
		for name, v := range vals {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("read stats: counter %s of %s: %w", name, minutes[i].Format(time.RFC3339), err)
			}
			c[name] = n
		}
		out[minutes[i]] = c
	}
	return out, nil
}

// AppendSample implements store.Stats.
func (s *Store) AppendSample(ctx context.Context, series string, sm store.Sample, limit int, ttl time.Duration) error {
	key := s.g.samples(series)
	member := strconv.FormatInt(sm.At.UnixNano(), 10) + " " + strconv.FormatFloat(sm.Value, 'g', -1, 64)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, key, member)
		if limit > 0 {
			p.LTrim(ctx, key, int64(-limit), -1)
		}
		if ttl > 0 {
			p.PExpire(ctx, key, ttl)
		}
		return nil
	})
	return fail(ctx, "append sample to "+series, err)
}

// Samples implements store.Stats.
func (s *Store) Samples(ctx context.Context, series string) ([]store.Sample, error) {
	vals, err := s.rdb.LRange(ctx, s.g.samples(series), 0, -1).Result()
	if err != nil {
		return nil, fail(ctx, "read samples of "+series, err)
	}
	out := make([]store.Sample, 0, len(vals))
	for _, v := range vals {
		at, val, ok := strings.Cut(v, " ")
		ns, err1 := strconv.ParseInt(at, 10, 64)
		f, err2 := strconv.ParseFloat(val, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("read samples of %s: %q: %w", series, v, errors.Join(errors.New("malformed sample"), err1, err2))
		}
		out = append(out, store.Sample{At: time.Unix(0, ns).UTC(), Value: f})
	}
	// Orchestrators append their own samples: order them by time.
	slices.SortStableFunc(out, func(a, b store.Sample) int { return a.At.Compare(b.At) })
	return out, nil
}
