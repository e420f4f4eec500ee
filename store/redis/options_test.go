package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func TestClientOptions(t *testing.T) {
	t.Parallel()
	o, err := clientOptions(Options{URL: "redis://:s3cret@redis.example:6380/3"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "redis.example:6380" || o.Password != "s3cret" || o.DB != 3 || o.TLSConfig != nil {
		t.Fatalf("redis:// URL parsed as addr=%s password=%q db=%d tls=%v", o.Addr, o.Password, o.DB, o.TLSConfig != nil)
	}
	o, err = clientOptions(Options{URL: "rediss://user:pw@secure.example/1", PoolSize: 42})
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "secure.example" || o.Username != "user" || o.Password != "pw" ||
		o.DB != 1 || o.PoolSize != 42 || o.Addr != "secure.example:6379" {
		t.Fatalf("rediss:// URL parsed as %+v", o)
	}
	custom := &tls.Config{ServerName: "other", MinVersion: tls.VersionTLS13}
	if o, _ := clientOptions(Options{URL: "rediss://h/0", TLSConfig: custom}); o.TLSConfig != custom {
		t.Fatal("TLSConfig not used")
	}
	if o, _ := clientOptions(Options{URL: "redis://h/0?pool_size=7"}); o.PoolSize != 7 {
		t.Fatalf("pool_size from the URL = %d", o.PoolSize)
	}
	if o, _ := clientOptions(Options{}); o.Addr != "127.0.0.1:6379" || o.DB != 0 {
		t.Fatalf("default URL gives %s db %d", o.Addr, o.DB)
	}
	if _, err := clientOptions(Options{URL: "http://h"}); err == nil {
		t.Fatal("a non-Redis URL was accepted")
	}
	if _, err := newStore(context.Background(), nil, Options{Prefix: "a{b}"}, false); err == nil {
		t.Fatal("a prefix with a hash tag was accepted")
	}
}

func TestIndexMemberOrder(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	ordered := []string{
		indexMember(time.Time{}, "zero"),
		indexMember(base.Add(-time.Hour), "b"),
		indexMember(base, "a"),
		indexMember(base, "b"),
		indexMember(base.Add(time.Nanosecond), "a"),
		indexMember(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "far"),
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1] >= ordered[i] {
			t.Fatalf("%q sorts after %q", ordered[i-1], ordered[i])
		}
	}
	if idOfMember(indexMember(base, "x:y")) != "x:y" {
		t.Fatal("id lost")
	}
	m, err := parseCursor(cursorOf(base, "b"))
	if err != nil || m != indexMember(base, "b") {
		t.Fatalf("cursor round trip: %q %v", m, err)
	}
}

func TestFailMapsErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := fail(ctx, "op", fmt.Errorf("wrapped: %w", errors.New("ERR wrong type"))); errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a server error counts as unavailable: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := fail(cctx, "op", context.Canceled); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("cancellation: %v", err)
	}
	if err := fail(ctx, "op", goredis.Nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("redis.Nil: %v", err)
	}
	if err := fail(ctx, "op", goredis.ErrPoolTimeout); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("pool timeout: %v", err)
	}
}

func TestClusterOptions(t *testing.T) {
	t.Parallel()
	o, err := clusterOptions(Options{URL: "redis://:pw@10.0.0.1:7000?addr=10.0.0.2:7001&addr=10.0.0.3:7002", PoolSize: 9})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(o.Addrs) != "[10.0.0.1:7000 10.0.0.2:7001 10.0.0.3:7002]" || o.Password != "pw" || o.PoolSize != 9 {
		t.Fatalf("cluster URL parsed as addrs=%v password=%q pool=%d", o.Addrs, o.Password, o.PoolSize)
	}
	if _, err := clusterOptions(Options{URL: "http://h:7000"}); err == nil {
		t.Fatal("a non-Redis cluster URL was accepted")
	}
}

// TestShardTags: the shards' hash tags land in equal parts of the slot
// space, in order, and a tree key's shard is the UUID byte modulo N.
func TestShardTags(t *testing.T) {
	t.Parallel()
	if one := shardTags("avto", 1); len(one) != 1 || one[0].base != "{avto}:" {
		t.Fatalf("one shard: %v", one)
	}
	tags := shardTags("avto", 16)
	for k, tag := range tags {
		slot := keySlot(tag.job("x"))
		if slot < k*slotCount/16 || slot >= (k+1)*slotCount/16 {
			t.Fatalf("shard %d's tag %s is in slot %d", k, tag.base, slot)
		}
	}
	// Redis' own example: the slot of "123456789" is CRC16 0x31C3 mod 16384.
	if keySlot("{123456789}:x") != 0x31C3%slotCount {
		t.Fatalf("keySlot = %d", keySlot("{123456789}:x"))
	}
	if shardIndex("3fa85f64-5717-4562-b3fc-2c963f66afa6", 16) != 0x3f%16 || shardIndex("task-3fa85f64", 16) != 0x3f%16 {
		t.Fatal("a UUID's shard is not its first byte modulo 16")
	}
	if shardIndex("job-1", 16) != shardIndex("jo", 16) || shardIndex("anything", 1) != 0 {
		t.Fatal("other ids are placed by their first two characters")
	}
}
