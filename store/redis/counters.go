package redis

import (
	"context"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// expireArg renders a window end for incrScript and incrIfBelowScript.
func expireArg(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return strconv.FormatInt(at.UnixMilli(), 10)
}

// Incr implements store.Counters.
func (s *Store) Incr(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error) {
	n, err := incrScript.Run(ctx, s.rdb, []string{s.spread(key).counter(key)}, delta, expireArg(expireAt)).Int64()
	if err != nil {
		return 0, fail(ctx, "increment "+key, err)
	}
	return n, nil
}

// IncrIfBelow implements store.Counters.
func (s *Store) IncrIfBelow(ctx context.Context, key string, limit int64, expireAt time.Time) (int64, bool, error) {
	res, err := incrIfBelowScript.Run(ctx, s.rdb, []string{s.spread(key).counter(key)}, limit, expireArg(expireAt)).Int64Slice()
	if err != nil {
		return 0, false, fail(ctx, "increment "+key, err)
	}
	return res[0], res[1] == 1, nil
}

// SetOnce implements store.Counters.
func (s *Store) SetOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.spread(key).value(key), "1", max(ttl, 0)).Result()
	if err != nil {
		return false, fail(ctx, "set once "+key, err)
	}
	return ok, nil
}

// PutValue implements store.Counters.
func (s *Store) PutValue(ctx context.Context, key, value string, ttl time.Duration) error {
	return fail(ctx, "put value "+key, s.rdb.Set(ctx, s.spread(key).value(key), value, max(ttl, 0)).Err())
}

// GetValue implements store.Counters.
func (s *Store) GetValue(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, s.spread(key).value(key)).Result()
	if err != nil {
		return "", fail(ctx, "value "+key, err)
	}
	return v, nil
}

// DeleteValue implements store.Counters.
func (s *Store) DeleteValue(ctx context.Context, key string) error {
	return fail(ctx, "delete value "+key, s.rdb.Del(ctx, s.spread(key).value(key)).Err())
}

// AcquireLock implements store.Counters.
func (s *Store) AcquireLock(ctx context.Context, name string, ttl time.Duration) (store.Lock, bool, error) {
	token, err := acquireLockScript.Run(ctx, s.rdb, []string{s.g.lock(name), s.g.lockFence()}, ttlMillis(ttl)).Int64()
	if err != nil {
		return store.Lock{}, false, fail(ctx, "acquire lock "+name, err)
	}
	if token == 0 {
		return store.Lock{}, false, nil
	}
	return store.Lock{Name: name, Token: token}, true, nil
}

// RefreshLock implements store.Counters.
func (s *Store) RefreshLock(ctx context.Context, l store.Lock, ttl time.Duration) (bool, error) {
	ok, err := refreshLockScript.Run(ctx, s.rdb, []string{s.g.lock(l.Name)}, l.Token, ttlMillis(ttl)).Int()
	if err != nil {
		return false, fail(ctx, "refresh lock "+l.Name, err)
	}
	return ok == 1, nil
}

// ReleaseLock implements store.Counters.
func (s *Store) ReleaseLock(ctx context.Context, l store.Lock) error {
	err := releaseLockScript.Run(ctx, s.rdb, []string{s.g.lock(l.Name)}, l.Token).Err()
	return fail(ctx, "release lock "+l.Name, err)
}
