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
