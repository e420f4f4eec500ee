package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// A worker record is a hash (doc: the JSON record; seen, exp: LastSeen and
// ExpiresAt after the last TouchWorker) that Redis expires after the TTL.
// workers:expiry mirrors each record's expiry (server clock) so that live
// workers can be listed and each expired one reported once.

func ttlMillis(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

// PutWorker implements store.Workers.
func (s *Store) PutWorker(ctx context.Context, w *store.Worker, ttl time.Duration) error {
	c := *w
	c.ExpiresAt = time.Now().Add(ttl)
	doc, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("put worker %s: encode: %w", w.ID, err)
	}
	err = putWorkerScript.Run(ctx, s.rdb, []string{s.g.worker(w.ID), s.g.workerExpiry()}, w.ID, doc, ttlMillis(ttl)).Err()
	return fail(ctx, "put worker "+w.ID, err)
}

// GetWorker implements store.Workers.
func (s *Store) GetWorker(ctx context.Context, id string) (*store.Worker, error) {
	vals, err := s.rdb.HMGet(ctx, s.g.worker(id), "doc", "seen", "exp").Result()
	if err != nil {
		return nil, fail(ctx, "get worker "+id, err)
	}
	w, err := decodeWorker(vals)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", id, err)
	}
	return w, nil
}

func decodeWorker(vals []any) (*store.Worker, error) {
	doc, ok := vals[0].(string)
	if !ok {
		return nil, store.ErrNotFound
	}
	var w store.Worker
	if err := json.Unmarshal([]byte(doc), &w); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if v, ok := vals[1].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			w.LastSeen = t
		}
	}
	if v, ok := vals[2].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			w.ExpiresAt = t
		}
	}
	return &w, nil
}

// ListWorkers implements store.Workers.
func (s *Store) ListWorkers(ctx context.Context) ([]*store.Worker, error) {
	ids, err := s.rdb.ZRange(ctx, s.g.workerExpiry(), 0, -1).Result()
	if err != nil {
		return nil, fail(ctx, "list workers", err)
	}
	cmds, err := pipelined(ctx, s.rdb, ids, func(p goredis.Pipeliner, id string) *goredis.SliceCmd {
		return p.HMGet(ctx, s.g.worker(id), "doc", "seen", "exp")
	})
	if err != nil {
		return nil, fail(ctx, "list workers", err)
	}
	out := make([]*store.Worker, 0, len(ids))
	for i, c := range cmds {
		w, err := decodeWorker(c.Val())
		if errors.Is(err, store.ErrNotFound) { // expired, not yet reported
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list workers: worker %s: %w", ids[i], err)
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TouchWorker implements store.Workers.
func (s *Store) TouchWorker(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	now := time.Now()
	ok, err := touchWorkerScript.Run(ctx, s.rdb, []string{s.g.worker(id), s.g.workerExpiry()}, id, ttlMillis(ttl),
		now.Format(time.RFC3339Nano), now.Add(ttl).Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fail(ctx, "touch worker "+id, err)
	}
	return ok == 1, nil
}

// DeleteWorker implements store.Workers.
func (s *Store) DeleteWorker(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.g.worker(id))
		p.ZRem(ctx, s.g.workerExpiry(), id)
		return nil
	})
	return fail(ctx, "delete worker "+id, err)
}

// ExpiredWorkers implements store.Workers.
func (s *Store) ExpiredWorkers(ctx context.Context) ([]string, error) {
	ids, err := expiredWorkersScript.Run(ctx, s.rdb, []string{s.g.workerExpiry()}).StringSlice()
	if err != nil {
		return nil, fail(ctx, "expired workers", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// Reputations implements store.Workers.
func (s *Store) Reputations(ctx context.Context, ids ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.g.reputation(), ids...).Result()
	if err != nil {
		return nil, fail(ctx, "reputations", err)
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		r, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("reputation of %s: %w", ids[i], err)
		}
		out[ids[i]] = r
	}
	return out, nil
}

// WorkerFigures implements store.Workers: one script reads the
// reputations and the loads.
func (s *Store) WorkerFigures(ctx context.Context, ids ...string) (store.WorkerFigures, error) {
	argv := make([]any, len(ids))
	for i, id := range ids {
		argv[i] = id
	}
	if s.sharded() {
		return s.shardedFigures(ctx, ids)
	}
	res, err := workerFiguresScript.Run(ctx, s.rdb, []string{s.g.reputation(), s.g.loads()}, argv...).Slice()
	if err != nil {
		return store.WorkerFigures{}, fail(ctx, "read worker figures", err)
	}
	if len(res) != 2 {
		return store.WorkerFigures{}, fmt.Errorf("read worker figures: unexpected reply of %d items", len(res))
	}
	f := store.WorkerFigures{Reputations: map[string]float64{}, Loads: parseLoads(pairsOf(res[1]))}
	for id, v := range pairsOf(res[0]) {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return store.WorkerFigures{}, fmt.Errorf("reputation of %s: %w", id, err)
		}
		f.Reputations[id] = r
	}
	return f, nil
}

// shardedFigures reads the reputations, and the loads of every shard at
// most once per loadsAge (see loadCache); the loads are not one consistent
// view of all shards, which placing a task does not need.
func (s *Store) shardedFigures(ctx context.Context, ids []string) (store.WorkerFigures, error) {
	reps, err := s.Reputations(ctx, ids...)
	if err != nil {
		return store.WorkerFigures{}, err
	}
	now := time.Now()
	loads, ok := s.loadCopy.get(now)
	if !ok {
		loads, err = s.loads(ctx)
		s.loadCopy.put(loads, now, err)
		if err != nil {
			return store.WorkerFigures{}, fail(ctx, "read worker figures", err)
		}
	}
	return store.WorkerFigures{Reputations: reps, Loads: loads}, nil
}

// loadsAge is how long a sharded Store places tasks on the loads it read
// last, plus the tasks it queued for workers since. Another process's
// placements, and tasks that ended, count at the next read.
const loadsAge = 20 * time.Millisecond

// loadCache is a sharded Store's copy of the workers' loads, summed over
// the shards, for WorkerFigures: reading them costs a command per shard.
type loadCache struct {
	mu      sync.Mutex
	at      time.Time // when the read began
	loads   map[string]int
	reading bool // a read is under way: the others keep to the copy
}

// get returns a copy of the loads if they are fresh, or if another caller
// is reading them anew; false: the caller reads them, then calls put.
func (c *loadCache) get(now time.Time) (map[string]int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loads == nil || (now.Sub(c.at) >= loadsAge && !c.reading) {
		c.reading = true
		return nil, false
	}
	return maps.Clone(c.loads), true
}

// put keeps the loads of a read begun at at (err: the read failed).
func (c *loadCache) put(loads map[string]int, at time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading = false
	if err == nil {
		c.loads, c.at = maps.Clone(loads), at
	}
}

// queued counts tasks this Store queued for a worker.
func (c *loadCache) queued(worker string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loads != nil {
		c.loads[worker] += n
	}
}

// AdjustReputation implements store.Workers.
func (s *Store) AdjustReputation(ctx context.Context, id string, delta, initial, floor, ceil float64) (float64, error) {
	res, err := adjustReputationScript.Run(ctx, s.rdb, []string{s.g.reputation()}, id,
		formatFloat(delta), formatFloat(initial), formatFloat(floor), formatFloat(ceil)).Text()
	if err != nil {
		return 0, fail(ctx, "adjust reputation of "+id, err)
	}
	r, err := strconv.ParseFloat(res, 64)
	if err != nil {
		return 0, fmt.Errorf("adjust reputation of %s: %w", id, err)
	}
	return r, nil
}

// SetReputation implements store.Workers.
func (s *Store) SetReputation(ctx context.Context, id string, value float64) error {
	return fail(ctx, "set reputation of "+id, s.rdb.HSet(ctx, s.g.reputation(), id, formatFloat(value)).Err())
}
