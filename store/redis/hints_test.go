package redis_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// enqueueInShard queues a task for worker w in a job of shard k (of 16):
// the job id's first byte places it.
func enqueueInShard(t *testing.T, s store.Store, k int, w string, score float64) string {
	t.Helper()
	id := fmt.Sprintf("%02x", k) + uuid.NewString()[2:]
	qt := task("task-"+store.NewTreeID(id), w, score)
	qt.JobID = id
	if err := s.CreateJob(testCtx(t), job(id), store.Effects{Enqueue: []store.QueuedTask{qt}}); err != nil {
		t.Fatal(err)
	}
	return qt.Run.ID
}

// TestClaimNextFindsEveryShard: one worker claims tasks queued in several
// shards; every task is claimed once, the first in queue order.
func TestClaimNextFindsEveryShard(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	s := openStore(t, redisstore.Options{URL: url, Prefix: newPrefix(t, url), Shards: 16})
	ctx := testCtx(t)
	want := map[string]bool{}
	first := enqueueInShard(t, s, 9, "w", 1)
	want[first] = true
	for i, k := range []int{0, 3, 3, 7, 12, 15, 15, 15} {
		want[enqueueInShard(t, s, k, "w", float64(10+i))] = true
	}
	for n := 0; ; n++ {
		got, err := s.ClaimNext(ctx, store.WorkerQueue("w"), "w")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			break
		}
		if n == 0 && got.Run.ID != first {
			t.Fatalf("first claim took %s, want the head %s", got.Run.ID, first)
		}
		if !want[got.Run.ID] {
			t.Fatalf("claim %d took %s: unknown or taken twice", n, got.Run.ID)
		}
		delete(want, got.Run.ID)
	}
	if len(want) > 0 {
		t.Fatalf("never claimed: %v", want)
	}
}

// TestClaimNextStarvesNoShard: while one shard keeps receiving tasks, a
// task another process queues in another shard after the claimer's last
// full look is still claimed within a bounded number of claims.
func TestClaimNextStarvesNoShard(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	a := openStore(t, redisstore.Options{URL: url, Prefix: prefix, Shards: 16})
	b := openStore(t, redisstore.Options{URL: url, Prefix: prefix, Shards: 16})
	ctx := testCtx(t)
	q := store.WorkerQueue("w")
	score := 100.0
	for range 3 {
		enqueueInShard(t, b, 2, "w", score)
		score++
	}
	if got, err := a.ClaimNext(ctx, q, "w"); err != nil || got == nil {
		t.Fatalf("first claim = %v, %v", got, err)
	}
	// The oldest task of all, in a shard a's hints do not name.
	lone := enqueueInShard(t, b, 5, "w", 1)
	for n := 1; ; n++ {
		enqueueInShard(t, b, 2, "w", score)
		score++
		got, err := a.ClaimNext(ctx, q, "w")
		if err != nil || got == nil {
			t.Fatalf("claim %d = %v, %v", n, got, err)
		}
		if got.Run.ID == lone {
			t.Logf("the task of the other shard came after %d claims", n)
			return
		}
		if n > 40 {
			t.Fatalf("the task of shard 5 is still queued after %d claims from shard 2", n)
		}
	}
}
