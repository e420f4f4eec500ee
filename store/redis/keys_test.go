package redis

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// TestOnceKeyInItsJobsShard: a job created with a value key
// (store.NewTreeIDFor) lands in the shard that holds the key, whatever the
// shard count, so the commit writes both in one script.
func TestOnceKeyInItsJobsShard(t *testing.T) {
	for _, key := range []string{"idem:acme:1", "idem:acme:2", "idem:globex:order-77", ""} {
		id := store.NewTreeIDFor(key)
		for n := 1; n <= 64; n++ {
			if nameIndex(key, n) != shardIndex(id, n) {
				t.Fatalf("%d shards: key %q in shard %d, its job %s in %d", n, key, nameIndex(key, n), id, shardIndex(id, n))
			}
		}
	}
}

// TestTreeIDInItsParentsShard: a child or task id made from an id whose
// tree key is no byte in hex (store.NewTreeID) lands in that id's shard,
// whatever the shard count.
func TestTreeIDInItsParentsShard(t *testing.T) {
	for _, parent := range []string{"job-1", "order-77", "x", "zz-top", "task-job-2", "{tag}", "ünï"} {
		for range 8 {
			child := store.NewTreeID(parent)
			task := "task-" + store.NewTreeID(parent)
			for n := 1; n <= 64; n++ {
				if shardIndex(child, n) != shardIndex(parent, n) || shardIndex(task, n) != shardIndex(parent, n) {
					t.Fatalf("%d shards: %q in shard %d, its child %s in %d, its task %s in %d",
						n, parent, shardIndex(parent, n), child, shardIndex(child, n), task, shardIndex(task, n))
				}
			}
		}
	}
}
