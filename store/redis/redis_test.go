package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
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
	matches, err := redisstore.DeploymentKeyPatterns(ctx, rdb, prefix)
	if err != nil {
		t.Errorf("delete test keys: %v", err)
		return
	}
	for _, match := range matches {
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

// TestKeyPatternsExact: cleaning up a deployment deletes its keys in every
// shard and nothing of a neighbour whose prefix starts with its own
// ("avto" and "avto:staging"), nor of one its glob characters would match
// (the old patterns "{avto}:*" and "{avto:s*" deleted both).
func TestKeyPatternsExact(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	ctx := testCtx(t)
	base := newPrefix(t, url)
	cases := []struct{ target, neighbour string }{
		{base, base + ":staging"},
		{base + "a", base + "a:s1:x"},
		{base + "*[x]", base + "-gx"},
	}
	for _, c := range cases {
		stores := map[string]*redisstore.Store{}
		ids := map[string][]string{}
		for _, p := range []string{c.target, c.neighbour} {
			t.Cleanup(func() { deleteKeys(t, url, p) })
			s := openStore(t, redisstore.Options{URL: url, Prefix: p, Shards: 4})
			stores[p] = s
			for range 16 { // over the 4 shards
				id := uuid.NewString()
				if err := s.CreateJob(ctx, job(id), store.Effects{Ready: []string{id}}); err != nil {
					t.Fatal(err)
				}
				ids[p] = append(ids[p], id)
			}
		}
		deleteKeys(t, url, c.target)
		for _, id := range ids[c.target] {
			if _, err := stores[c.target].GetJob(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%q: job %s after cleanup: %v", c.target, id, err)
			}
		}
		for _, id := range ids[c.neighbour] {
			if _, err := stores[c.neighbour].GetJob(ctx, id); err != nil {
				t.Errorf("cleanup of %q took job %s of %q: %v", c.target, id, c.neighbour, err)
			}
		}
	}
}

// TestTreeRefusesForeignTasks: with several shards a commit that enqueues
// or removes a task whose id is outside the written job's tree is refused
// and writes nothing, since ClaimTask and ReleaseTask look for a task only
// in the shard its id names.
func TestTreeRefusesForeignTasks(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	ctx := testCtx(t)
	s := openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url), Shards: 16})
	id := "00000000-0000-4000-8000-000000000000"           // shard 0
	foreign := "task-01000000-0000-4000-8000-000000000000" // shard 1
	cases := map[string]store.Effects{
		"enqueue": {Enqueue: []store.QueuedTask{task(foreign, "w", 1)}},
		"remove":  {Remove: []string{foreign}},
	}
	for name, fx := range cases {
		err := s.CreateJob(ctx, job(id), fx)
		if err == nil || !strings.Contains(err.Error(), "not in the tree of job") {
			t.Fatalf("%s: commit with a task of another tree: %v", name, err)
		}
		if _, err := s.GetJob(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: refused commit created the job: %v", name, err)
		}
	}
	// A task of the tree is claimed and released in its shard.
	own := "task-" + store.NewTreeID(id)
	if err := s.CreateJob(ctx, job(id), store.Effects{Enqueue: []store.QueuedTask{task(own, "w", 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimTask(ctx, foreign, "w"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of an unknown task: %v", err)
	}
	if _, err := s.ClaimTask(ctx, own, "w"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseTask(ctx, "w", own); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RunningTasks(ctx, "w"); len(r) != 0 {
		t.Fatalf("released task still running: %v", r)
	}
}
