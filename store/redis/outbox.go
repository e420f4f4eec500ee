package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// AppendEvents implements store.Outbox.
func (s *Store) AppendEvents(ctx context.Context, events ...[]byte) error {
	if len(events) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, ev := range events {
			p.XAdd(ctx, &goredis.XAddArgs{Stream: s.k.outbox(), Values: []any{"e", ev}})
		}
		return nil
	})
	if err != nil {
		return fail(ctx, "append events", err)
	}
	return nil
}

// ReadEvents implements store.Outbox. A wait blocks one pooled connection
// (XREAD BLOCK); consumers keep it short.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	if after == "" {
		after = "0-0"
	}
	block := time.Duration(-1)
	if wait > 0 {
		block = max(wait, time.Millisecond)
	}
	res, err := s.rdb.XRead(ctx, &goredis.XReadArgs{
		Streams: []string{s.k.outbox(), after}, Count: int64(limit), Block: block,
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
			data, ok := m.Values["e"].(string)
			if !ok {
				return nil, fmt.Errorf("outbox entry %s has no event", m.ID)
			}
			out = append(out, store.OutboxEntry{ID: m.ID, Data: []byte(data)})
		}
	}
	return out, nil
}

// LastEventID implements store.Outbox.
func (s *Store) LastEventID(ctx context.Context) (string, error) {
	res, err := s.rdb.XRevRangeN(ctx, s.k.outbox(), "+", "-", 1).Result()
	if err != nil {
		return "", fail(ctx, "last event", err)
	}
	if len(res) == 0 {
		return "", nil
	}
	return res[0].ID, nil
}

// TrimEvents implements store.Outbox.
func (s *Store) TrimEvents(ctx context.Context, before string) error {
	if before == "" {
		return nil
	}
	if err := s.rdb.XTrimMinID(ctx, s.k.outbox(), before).Err(); err != nil {
		return fail(ctx, "trim events", err)
	}
	return nil
}

// EventCount implements store.Outbox.
func (s *Store) EventCount(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, s.k.outbox()).Result()
	if err != nil {
		return 0, fail(ctx, "count events", err)
	}
	return n, nil
}
