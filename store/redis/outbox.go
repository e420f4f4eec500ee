package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// With several shards the outbox is one stream per shard (a commit appends
// to its job's shard), and entry ids are positions over all of them
// (store.JoinEventPosition): the stream id reached in each shard, after
// the entry. ReadEvents merges the streams by stream id (then shard), so a
// consumer sees each job's events in order; a shard whose server clock
// lags may deliver an entry with an older stream id after newer ones of
// other shards, but none is skipped, because each shard is read from its
// own cursor.

// AppendEvents implements store.Outbox. With several shards, the events
// of a job tree go to the tree's shard, after its committed events; those
// of no job (tree "") to one shard per call, in turn.
func (s *Store) AppendEvents(ctx context.Context, tree string, events ...[]byte) error {
	if len(events) == 0 {
		return nil
	}
	i := shardIndex(tree, len(s.shards))
	if tree == "" {
		i = s.visit()[0]
	}
	k := s.shards[i]
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, ev := range events {
			p.XAdd(ctx, &goredis.XAddArgs{Stream: k.outbox(), Values: []any{"e", ev}})
		}
		if s.sharded() {
			p.SPublish(ctx, k.signalChannel(), strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		return fail(ctx, "append events", err)
	}
	if s.sharded() {
		s.watch.signal(i)
	}
	return nil
}

// ReadEvents implements store.Outbox. A wait blocks one pooled connection
// (XREAD BLOCK); consumers keep it short. With several shards it reads
// only the shards that may hold entries after the cursor (see shardWatch)
// and waits, holding no connection, for a shard's signal.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	if s.sharded() {
		return s.readShardedEvents(ctx, after, limit, wait)
	}
	if after == "" {
		after = "0-0"
	}
	block := time.Duration(-1)
	if wait > 0 {
		block = max(wait, time.Millisecond)
	}
	res, err := s.rdb.XRead(ctx, &goredis.XReadArgs{
		Streams: []string{s.shards[0].outbox(), after}, Count: int64(limit), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) || (err != nil && ctx.Err() != nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(ctx, "read events", err)
	}
	var out []store.OutboxEntry
	for _, st := range res {
		for _, m := range st.Messages {
			e, err := entryOf(m)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func entryOf(m goredis.XMessage) (store.OutboxEntry, error) {
	data, ok := m.Values["e"].(string)
	if !ok {
		return store.OutboxEntry{}, fmt.Errorf("outbox entry %s has no event", m.ID)
	}
	return store.OutboxEntry{ID: m.ID, Data: []byte(data)}, nil
}

// readShardedEvents reads up to limit entries of the shards that may hold
// entries after the position, merges them and returns the first limit,
// each with the position after it. With none, it waits for a shard's
// signal, or shardFallback, and reads again.
func (s *Store) readShardedEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]store.OutboxEntry, error) {
	_, pos, ok := store.SplitEventPosition(after, len(s.shards))
	if !ok {
		return nil, fmt.Errorf("read events: %q is not a position over %d shards", after, len(s.shards))
	}
	for i, id := range pos {
		if id == "" {
			pos[i] = "0-0"
		}
	}
	deadline := time.Now().Add(wait)
	for {
		gens, wake := s.watch.snapshot()
		out, err := s.readShardsOnce(ctx, pos, limit, gens)
		if err != nil || len(out) > 0 {
			if err != nil && ctx.Err() != nil {
				return nil, nil
			}
			return out, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		t := time.NewTimer(min(left, shardFallback))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// readShardsOnce is one look at the streams of the shards that may hold
// entries after pos (gens: the signal counts taken before it). A shard
// whose stream it reads to the end is marked as ending there.
func (s *Store) readShardsOnce(ctx context.Context, pos []string, limit int, gens []uint64) ([]store.OutboxEntry, error) {
	now := time.Now()
	var idx []int
	for i := range s.shards {
		if s.watch.eventsAfter(i, pos[i], now) {
			idx = append(idx, i)
		}
	}
	cmds, err := pipelined(ctx, s.rdb, idx, func(p goredis.Pipeliner, i int) *goredis.XMessageSliceCmd {
		return p.XRangeN(ctx, s.shards[i].outbox(), "("+pos[i], "+", int64(limit))
	})
	if err != nil {
		return nil, fail(ctx, "read events", err)
	}
	heads := make([][]goredis.XMessage, len(s.shards))
	whole := make([]bool, len(s.shards)) // the read reached the stream's end
	for j, c := range cmds {
		heads[idx[j]] = c.Val()
		whole[idx[j]] = len(c.Val()) < limit
	}
	pos = append([]string(nil), pos...)
	var out []store.OutboxEntry
	for len(out) < limit {
		best := -1
		for i, h := range heads {
			if len(h) > 0 && (best < 0 || store.CompareEventIDs(h[0].ID, heads[best][0].ID) < 0) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		e, err := entryOf(heads[best][0])
		if err != nil {
			return nil, err
		}
		pos[best] = e.ID
		heads[best] = heads[best][1:]
		e.ID = store.JoinEventPosition(best, pos)
		out = append(out, e)
	}
	for _, i := range idx {
		if whole[i] && len(heads[i]) == 0 {
			s.watch.noEventsAfter(i, pos[i], gens[i], now)
		}
	}
	return out, nil
}

// LastEventID implements store.Outbox. With several shards: the position
// after the entry ReadEvents would return last.
func (s *Store) LastEventID(ctx context.Context) (string, error) {
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.XMessageSliceCmd {
		return p.XRevRangeN(ctx, k.outbox(), "+", "-", 1)
	})
	if err != nil {
		return "", fail(ctx, "last event", err)
	}
	pos := make([]string, len(cmds))
	owner := -1
	for i, c := range cmds {
		pos[i] = "0-0"
		if res := c.Val(); len(res) > 0 {
			pos[i] = res[0].ID
			if owner < 0 || store.CompareEventIDs(pos[i], pos[owner]) >= 0 {
				owner = i
			}
		}
	}
	switch {
	case owner < 0:
		return "", nil
	case !s.sharded():
		return pos[0], nil
	}
	return store.JoinEventPosition(owner, pos), nil
}

// TrimEvents implements store.Outbox. A position trims each shard before
// its id there, and before the id after it in shards other than the one
// whose entry it ends at (those entries were read before it).
func (s *Store) TrimEvents(ctx context.Context, before string) error {
	if before == "" {
		return nil
	}
	owner, pos, ok := store.SplitEventPosition(before, len(s.shards))
	if !ok {
		return fmt.Errorf("trim events: %q is not a position over %d shards", before, len(s.shards))
	}
	for i, k := range s.shards {
		minID := pos[i]
		if owner >= 0 && i != owner {
			minID = nextStreamID(minID)
		}
		if minID == "" {
			continue
		}
		if err := s.rdb.XTrimMinID(ctx, k.outbox(), minID).Err(); err != nil {
			return fail(ctx, "trim events", err)
		}
	}
	return nil
}

// nextStreamID is the smallest stream id after id ("" for none or junk).
func nextStreamID(id string) string {
	ms, seq, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return ""
	}
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// EventCount implements store.Outbox.
func (s *Store) EventCount(ctx context.Context) (int64, error) {
	n, err := sumOver(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.IntCmd {
		return p.XLen(ctx, k.outbox())
	})
	if err != nil {
		return 0, fail(ctx, "count events", err)
	}
	return n, nil
}
