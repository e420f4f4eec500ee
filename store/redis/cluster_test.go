package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
	"github.com/avtomatika-ai/avtomatika-go/store/storetest"
)

// TestConformanceCluster runs the suite on a Redis Cluster of three
// masters with 16 shards.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	url := testenv.ClusterURL(addrs)
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		return openStore(t, redisstore.Options{URL: url, Cluster: true, Prefix: newClusterPrefix(t, addrs), Retention: o.Retention, Shards: 16})
	})
}

// TestClusterOneShard: with one shard, as before sharding, the whole
// deployment is one slot, and it works on a Cluster too, a reward
// committed with a write included.
func TestClusterOneShard(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	s := openStore(t, redisstore.Options{URL: testenv.ClusterURL(addrs), Cluster: true, Prefix: newClusterPrefix(t, addrs)})
	ctx := context.Background()
	j := &store.Job{ID: uuid.NewString(), Blueprint: "bp", Status: "pending", CreatedAt: time.Now()}
	if err := s.CreateJob(ctx, j, store.Effects{Ready: []string{j.ID}, Events: [][]byte{[]byte("e")}}); err != nil {
		t.Fatal(err)
	}
	if id, _, err := s.NextReady(ctx, time.Minute); err != nil || id != j.ID {
		t.Fatalf("next ready = %q, %v", id, err)
	}
	// A reward travels in the commit: workers:reputation is in the slot.
	r := &store.Reward{Worker: "w", Delta: 0.25, Initial: 0.5, Floor: 0, Ceiling: 1}
	if err := s.UpdateJob(ctx, j, store.Effects{Rewards: []*store.Reward{r}}); err != nil || !r.Applied || r.Value != 0.75 {
		t.Fatalf("update with a reward: %v, %+v", err, r)
	}
	if reps, err := s.Reputations(ctx, "w"); err != nil || reps["w"] != 0.75 {
		t.Fatalf("reputations = %v, %v", reps, err)
	}
}

// TestClusterKeySpread: the keys of many job trees spread over the three
// masters, none holding more than half of them.
func TestClusterKeySpread(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	prefix := newClusterPrefix(t, addrs)
	s := openStore(t, redisstore.Options{URL: testenv.ClusterURL(addrs), Cluster: true, Prefix: prefix, Shards: 16})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const jobs = 1000
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < jobs; i += 8 {
				id := uuid.NewString()
				j := &store.Job{ID: id, Blueprint: "bp", Status: "pending", CreatedAt: time.Now()}
				task := store.QueuedTask{JobID: id, Worker: fmt.Sprintf("w%d", i%5), Run: store.TaskRun{ID: "task-" + store.NewTreeID(id)}}
				if err := s.CreateJob(ctx, j, store.Effects{Enqueue: []store.QueuedTask{task}, Events: [][]byte{[]byte("e")}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	counts, err := redisstore.KeysPerMaster(ctx, clusterClient(addrs), prefix)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("keys per master: %v (total %d)", counts, total)
	if len(counts) < 3 || total < jobs {
		t.Fatalf("keys per master = %v: want %d jobs' keys over 3 masters", counts, jobs)
	}
	for addr, n := range counts {
		if 2*n > total {
			t.Fatalf("master %s holds %d of %d keys", addr, n, total)
		}
	}
}

func clusterClient(addrs []string) *goredis.ClusterClient {
	return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
}

// newClusterPrefix is newPrefix on a cluster: the prefix's keys are
// deleted from every master when the test ends.
func newClusterPrefix(t testing.TB, addrs []string) string {
	t.Helper()
	p := fmt.Sprintf("avtotest-c%d-%s", prefixSeq.Add(1), uuid.NewString()[:8])
	// The cluster tests use one shard or 16; the patterns of 16 cover both.
	testenv.CleanCluster(t, addrs, redisstore.KeyPatterns(p, 16)...)
	return p
}
