package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// WorkerFigures implements store.Workers. It answers from the figures it
// read last when they are younger than loadsAge (see figureCache), and
// when they are younger than figuresStale too, reading them anew in the
// background for the next caller, so that the first dispatch after a quiet
// spell does not wait for a round trip; else one script reads the
// reputations and the loads (of several shards: the reputations, and
// every shard's loads in one pipeline).
func (s *Store) WorkerFigures(ctx context.Context, ids ...string) (store.WorkerFigures, error) {
	now := time.Now()
	f, want, ok := s.figures.get(ids, now)
	if ok {
		if want != nil {
			s.refreshFigures(want, now)
		}
		return f, nil
	}
	f, err := s.readFigures(ctx, want)
	s.figures.put(want, f, now, err)
	if err != nil {
		return store.WorkerFigures{}, err
	}
	f.Reputations = pick(f.Reputations, ids)
	return f, nil
}

// refreshFigures reads the figures of ids in the background, for a
// figureCache.get that answered from an older copy and left the cache
// marked as reading. A Store being closed reads nothing.
func (s *Store) refreshFigures(ids []string, at time.Time) {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		s.figures.put(ids, store.WorkerFigures{}, at, errClosed)
		return
	}
	s.wg.Add(1)
	s.wmu.Unlock()
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, figuresStale)
		defer cancel()
		f, err := s.readFigures(ctx, ids)
		s.figures.put(ids, f, at, err)
	}()
}

// pick returns the reputations of ids among reps.
func pick(reps map[string]float64, ids []string) map[string]float64 {
	out := make(map[string]float64, len(ids))
	for _, id := range ids {
		if r, ok := reps[id]; ok {
			out[id] = r
		}
	}
	return out
}

// readFigures reads the figures of ids from Redis. Of several shards, the
// loads are not one consistent view of all shards, which placing a task
// does not need.
func (s *Store) readFigures(ctx context.Context, ids []string) (store.WorkerFigures, error) {
	if s.sharded() {
		reps, err := s.Reputations(ctx, ids...)
		if err != nil {
			return store.WorkerFigures{}, err
		}
		loads, err := s.loads(ctx)
		if err != nil {
			return store.WorkerFigures{}, fail(ctx, "read worker figures", err)
		}
		return store.WorkerFigures{Reputations: reps, Loads: loads}, nil
	}
	argv := make([]any, len(ids))
	for i, id := range ids {
		argv[i] = id
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

// loadsAge is how long a Store places tasks on the figures it read last,
// plus the tasks it queued for workers and the reputations it wrote since.
// Another process's placements and reputations, and tasks that ended,
// count at the next read: a dispatch is at most this far behind them, or,
// the first after a quiet spell, at most figuresStale, while its read runs
// in the background.
const (
	loadsAge     = 20 * time.Millisecond
	figuresStale = time.Second
)

// figureCache is a Store's copy of the workers' figures, for
// WorkerFigures: under load a dispatch every few hundred microseconds
// would otherwise read them each time.
type figureCache struct {
	mu      sync.Mutex
	at      time.Time // when the read began
	loads   map[string]int
	reps    map[string]float64  // of the workers asked, those that have one
	asked   map[string]struct{} // the workers whose reputations were read
	reading bool                // a read is under way: the others keep to the copy
}

// get returns a copy of the figures of ids if they were read for each of
// them and are fresh, or another caller is reading them anew (want nil).
// A copy older than loadsAge but younger than figuresStale comes with the
// workers to read anew (want), and the caller reads them in the
// background, then calls put. Else it returns the workers to read (ok
// false): ids and those read before (so that a read for one worker keeps
// the others' figures), and the caller reads them, then calls put.
func (c *figureCache) get(ids []string, now time.Time) (f store.WorkerFigures, want []string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	known := true
	for _, id := range ids {
		if _, ok := c.asked[id]; !ok {
			known = false
			break
		}
	}
	if age := now.Sub(c.at); known && c.loads != nil && (age < figuresStale || c.reading) {
		f = store.WorkerFigures{Reputations: pick(c.reps, ids), Loads: maps.Clone(c.loads)}
		if age < loadsAge || c.reading {
			return f, nil, true
		}
		c.reading = true
		return f, slices.Collect(maps.Keys(c.asked)), true
	}
	c.reading = true
	want = ids
	if len(c.asked) <= maxAsked {
		seen := make(map[string]struct{}, len(ids)+len(c.asked))
		want = make([]string, 0, len(ids)+len(c.asked))
		for _, id := range ids {
			seen[id] = struct{}{}
			want = append(want, id)
		}
		for id := range c.asked {
			if _, ok := seen[id]; !ok {
				want = append(want, id)
			}
		}
	}
	return store.WorkerFigures{}, want, false
}

// maxAsked bounds the workers whose figures a read adds to those asked
// for: beyond it, a read asks for these alone.
const maxAsked = 1024

// put keeps the figures of ids from a read begun at at (err: the read
// failed).
func (c *figureCache) put(ids []string, f store.WorkerFigures, at time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading = false
	if err != nil {
		return
	}
	c.loads, c.reps, c.at = maps.Clone(f.Loads), maps.Clone(f.Reputations), at
	if c.loads == nil {
		c.loads = map[string]int{}
	}
	if c.reps == nil {
		c.reps = map[string]float64{}
	}
	c.asked = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		c.asked[id] = struct{}{}
	}
}

// queued counts tasks this Store queued for a worker.
func (c *figureCache) queued(worker string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loads != nil {
		c.loads[worker] += n
	}
}

// reputation records a reputation this Store wrote.
func (c *figureCache) reputation(worker string, r float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.asked[worker]; ok {
		c.reps[worker] = r
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
	s.figures.reputation(id, r)
	return r, nil
}

// SetReputation implements store.Workers.
func (s *Store) SetReputation(ctx context.Context, id string, value float64) error {
	if err := s.rdb.HSet(ctx, s.g.reputation(), id, formatFloat(value)).Err(); err != nil {
		return fail(ctx, "set reputation of "+id, err)
	}
	s.figures.reputation(id, value)
	return nil
}
