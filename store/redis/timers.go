package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Timers are a sorted set of timer keys scored by due time in unix
// microseconds (exact in a float64 for the next quarter of a millennium),
// with the timer documents in a hash beside it. A timer's At is its score.

func timerScore(at time.Time) string { return strconv.FormatInt(at.UnixMicro(), 10) }

func scoreTime(score float64) time.Time { return time.UnixMicro(int64(score)) }

// AddTimers implements store.Timers.
func (s *Store) AddTimers(ctx context.Context, timers ...store.Timer) error {
	if len(timers) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, t := range timers {
			doc, err := json.Marshal(t)
			if err != nil {
				return fmt.Errorf("encode timer %s: %w", t.Key(), err)
			}
			p.ZAdd(ctx, s.k.timers(), goredis.Z{Score: float64(t.At.UnixMicro()), Member: t.Key()})
			p.HSet(ctx, s.k.timerData(), t.Key(), doc)
		}
		return nil
	})
	return fail(ctx, "add timers", err)
}

// DueTimers implements store.Timers.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]store.Timer, error) {
	if limit <= 0 {
		return nil, nil
	}
	res, err := dueTimersScript.Run(ctx, s.rdb, []string{s.k.timers(), s.k.timerData()},
		timerScore(now), limit, timerScore(now.Add(visibility))).StringSlice()
	if err != nil {
		return nil, fail(ctx, "due timers", err)
	}
	out := make([]store.Timer, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		key, doc := res[i], res[i+2]
		var t store.Timer
		if err := json.Unmarshal([]byte(doc), &t); err != nil {
			// No document: the key still says what the timer is.
			parsed, ok := store.ParseTimerKey(key)
			if !ok {
				return nil, fmt.Errorf("due timers: timer %q has no readable document", key)
			}
			t = parsed
		}
		score, err := strconv.ParseFloat(res[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("due timers: score of %q: %w", key, err)
		}
		t.At = scoreTime(score)
		out = append(out, t)
	}
	return out, nil
}

// DeleteTimers implements store.Timers.
func (s *Store) DeleteTimers(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	members := make([]any, len(keys))
	for i, k := range keys {
		members[i] = k
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, s.k.timers(), members...)
		p.HDel(ctx, s.k.timerData(), keys...)
		return nil
	})
	return fail(ctx, "delete timers", err)
}

// NextTimer implements store.Timers.
func (s *Store) NextTimer(ctx context.Context) (time.Time, bool, error) {
	first, err := s.rdb.ZRangeWithScores(ctx, s.k.timers(), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fail(ctx, "next timer", err)
	}
	if len(first) == 0 {
		return time.Time{}, false, nil
	}
	return scoreTime(first[0].Score), true, nil
}
