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
	byShard := map[int][]store.Timer{}
	for _, t := range timers {
		i := shardIndex(t.JobID, len(s.shards))
		byShard[i] = append(byShard[i], t)
	}
	// One transaction per shard: a Cluster has none across slots.
	for i, timers := range byShard {
		k := s.shards[i]
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, t := range timers {
				doc, err := timerDoc(t)
				if err != nil {
					return err
				}
				p.ZAdd(ctx, k.timers(), goredis.Z{Score: float64(t.At.UnixMicro()), Member: t.Key()})
				if doc != "" {
					p.HSet(ctx, k.timerData(), t.Key(), doc)
				}
			}
			if s.sharded() {
				p.SPublish(ctx, k.signalChannel(), strconv.Itoa(i))
			}
			return nil
		})
		if err != nil {
			return fail(ctx, "add timers", err)
		}
		if s.sharded() {
			s.watch.signal(i)
		}
	}
	return nil
}

// DueTimers implements store.Timers. With several shards it skips those
// whose earliest timer it knows to be due later (see shardWatch).
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]store.Timer, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []store.Timer
	for _, i := range s.visit() {
		if s.sharded() {
			if due, none, known := s.watch.nextTimer(i, time.Now()); known && (none || due > float64(now.UnixMicro())) {
				continue
			}
			// The script moves the timers it claims: what was known of the
			// shard's earliest no longer holds.
			s.watch.forgetTimers(i)
		}
		k := s.shards[i]
		res, err := dueTimersScript.Run(ctx, s.rdb, []string{k.timers(), k.timerData()},
			timerScore(now), limit-len(out), timerScore(now.Add(visibility))).StringSlice()
		if err != nil {
			return nil, fail(ctx, "due timers", err)
		}
		for i := 0; i+2 < len(res); i += 3 {
			t, err := decodeTimer(res[i], res[i+1], res[i+2])
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

// timerDoc is what timers:data keeps of a timer: nothing ("") when its key
// says all but its due time, which is its score (store.ParseTimerKey),
// else the timer as JSON.
func timerDoc(t store.Timer) (string, error) {
	if keySaysAll(t.Key()) {
		return "", nil
	}
	doc, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode timer %s: %w", t.Key(), err)
	}
	return string(doc), nil
}

// keySaysAll reports whether a timer key says all of its timer but the due
// time (it parses back to itself): such a timer has no document.
func keySaysAll(key string) bool {
	t, ok := store.ParseTimerKey(key)
	return ok && t.Key() == key
}

// dropRedundantTimerDocs deletes the documents of timers whose key says all
// of them, which versions before timerDoc wrote for every timer: a cancel
// deletes only the documents timerDoc writes, and these are never needed
// (decodeTimer parses the key without one). Run once as a Store starts,
// in the background; a document an older orchestrator writes meanwhile
// goes at the next start.
func (s *Store) dropRedundantTimerDocs(ctx context.Context) error {
	for _, k := range s.shards {
		var cursor uint64
		for {
			fields, next, err := s.rdb.HScan(ctx, k.timerData(), cursor, "", 500).Result()
			if err != nil {
				return fail(ctx, "drop redundant timer documents", err)
			}
			var drop []string
			for i := 0; i+1 < len(fields); i += 2 {
				if keySaysAll(fields[i]) {
					drop = append(drop, fields[i])
				}
			}
			if len(drop) > 0 {
				if err := s.rdb.HDel(ctx, k.timerData(), drop...).Err(); err != nil {
					return fail(ctx, "drop redundant timer documents", err)
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// decodeTimer reads a timer the due script returned.
func decodeTimer(key, score, doc string) (store.Timer, error) {
	var t store.Timer
	if err := json.Unmarshal([]byte(doc), &t); err != nil {
		// No document: the key still says what the timer is.
		parsed, ok := store.ParseTimerKey(key)
		if !ok {
			return t, fmt.Errorf("due timers: timer %q has no readable document", key)
		}
		t = parsed
	}
	sc, err := strconv.ParseFloat(score, 64)
	if err != nil {
		return t, fmt.Errorf("due timers: score of %q: %w", key, err)
	}
	t.At = scoreTime(sc)
	return t, nil
}

// DeleteTimers implements store.Timers.
func (s *Store) DeleteTimers(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	// A timer lives in its job's shard; a key that names no job is looked
	// for in every shard.
	byShard := map[int][]string{}
	for _, key := range keys {
		if t, ok := store.ParseTimerKey(key); ok {
			i := shardIndex(t.JobID, len(s.shards))
			byShard[i] = append(byShard[i], key)
			continue
		}
		for i := range s.shards {
			byShard[i] = append(byShard[i], key)
		}
	}
	for i, keys := range byShard {
		members := make([]any, len(keys))
		for j, key := range keys {
			members[j] = key
		}
		_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZRem(ctx, s.shards[i].timers(), members...)
			p.HDel(ctx, s.shards[i].timerData(), keys...)
			return nil
		})
		if err != nil {
			return fail(ctx, "delete timers", err)
		}
	}
	return nil
}

// NextTimer implements store.Timers. With several shards it reads only
// the shards whose earliest timer it does not know (see shardWatch).
func (s *Store) NextTimer(ctx context.Context) (time.Time, bool, error) {
	gens, _ := s.watch.snapshot()
	now := time.Now()
	var next float64
	found := false
	consider := func(due float64) {
		if !found || due < next {
			next, found = due, true
		}
	}
	var idx []int
	for i := range s.shards {
		due, none, known := s.watch.nextTimer(i, now)
		switch {
		case !known || !s.sharded():
			idx = append(idx, i)
		case !none:
			consider(due)
		}
	}
	cmds, err := pipelined(ctx, s.rdb, idx, func(p goredis.Pipeliner, i int) *goredis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, s.shards[i].timers(), 0, 0)
	})
	if err != nil {
		return time.Time{}, false, fail(ctx, "next timer", err)
	}
	for j, c := range cmds {
		first := c.Val()
		if len(first) > 0 {
			consider(first[0].Score)
		}
		if s.sharded() {
			var due float64
			if len(first) > 0 {
				due = first[0].Score
			}
			s.watch.timerRead(idx[j], due, len(first) == 0, gens[idx[j]], now)
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return scoreTime(next), true, nil
}
