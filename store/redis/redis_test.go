package redis_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
	"github.com/avtomatika-ai/avtomatika-go/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		return openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url), Retention: o.Retention})
	})
}

// TestConformanceSharded runs the suite on one server with the live state
// spread over 16 shards (key tags), as on a Cluster.
func TestConformanceSharded(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		return openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url), Retention: o.Retention, Shards: 16})
	})
}

var prefixSeq atomic.Int64

// newPrefix returns a key prefix no other test uses, and deletes its keys
// when the test ends.
func newPrefix(t testing.TB, url string) string {
	t.Helper()
	p := fmt.Sprintf("avtotest-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
	t.Cleanup(func() { deleteKeys(t, url, p) })
	return p
}

// deleteKeys removes every key of a prefix (never the whole database: the
// server is shared).
func deleteKeys(t testing.TB, url, prefix string) {
	t.Helper()
	rdb := rawClient(t, url)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := rdb.Del(ctx, batch...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
			batch = batch[:0]
		}
	}
	// The deployment's keys, and those of its shards.
	for _, match := range redisstore.KeyPatterns(prefix) {
		iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				flush()
			}
		}
		flush()
		if err := iter.Err(); err != nil {
			t.Errorf("scan test keys: %v", err)
		}
	}
}

func rawClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return goredis.NewClient(o)
}

// openStore opens a store that closes when the test ends.
func openStore(t testing.TB, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestShardCountKept: a deployment keeps its number of shards; a Store
// with another number is refused, and nothing it would have missed is
// touched.
func TestShardCountKept(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	ctx := context.Background()
	prefix := newPrefix(t, url)
	openStore(t, redisstore.Options{URL: url, Prefix: prefix, Shards: 4})
	openStore(t, redisstore.Options{URL: url, Prefix: prefix, Shards: 4})
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: url, Prefix: prefix, Shards: 8}); err == nil || !strings.Contains(err.Error(), "has 4 shards, not 8") {
		t.Fatalf("open with another shard count: %v", err)
	}
	// A deployment from before the count was kept, with jobs in one shard.
	old := newPrefix(t, url)
	rdb := rawClient(t, url)
	defer rdb.Close()
	if err := rdb.ZAdd(ctx, "{"+old+"}:jobs:all", goredis.Z{Member: "x"}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: url, Prefix: old, Shards: 16}); err == nil || !strings.Contains(err.Error(), "one shard, not 16") {
		t.Fatalf("open an old deployment with 16 shards: %v", err)
	}
	openStore(t, redisstore.Options{URL: url, Prefix: old})
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: url, Prefix: old, Shards: 300}); err == nil {
		t.Fatal("300 shards accepted")
	}
}
