package redis

import (
	"context"
	"fmt"
	"slices"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// Readers that span the shards of a deployment. With one shard each is one
// command, as before sharding.

// queueNames returns the names of the non-empty queues of every shard.
func (s *Store) queueNames(ctx context.Context) ([]string, error) {
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.StringSliceCmd {
		return p.SMembers(ctx, k.queues())
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Val()...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// loads sums tasks:loads over the shards.
func (s *Store) loads(ctx context.Context) (map[string]int, error) {
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.MapStringStringCmd {
		return p.HGetAll(ctx, k.loads())
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, c := range cmds {
		for w, n := range parseLoads(c.Val()) {
			out[w] += n
		}
	}
	return out, nil
}

// KeyPatterns are the SCAN MATCH patterns of every key of a deployment
// (its prefix), in all its shards: for tools that count or delete them.
func KeyPatterns(prefix string) []string {
	return []string{"{" + prefix + "}:*", "{" + prefix + ":s*"}
}

// KeysPerMaster counts the keys of a deployment (its prefix, all shards)
// on each master of a Cluster, by address: how evenly the deployment
// spreads (for benchmarks and tests).
func KeysPerMaster(ctx context.Context, c *goredis.ClusterClient, prefix string) (map[string]int, error) {
	var mu sync.Mutex
	out := map[string]int{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		n := 0
		for _, match := range KeyPatterns(prefix) {
			iter := m.Scan(ctx, 0, match, 1000).Iterator()
			for iter.Next(ctx) {
				n++
			}
			if err := iter.Err(); err != nil {
				return fmt.Errorf("scan %s: %w", m.Options().Addr, err)
			}
		}
		mu.Lock()
		out[m.Options().Addr] = n
		mu.Unlock()
		return nil
	})
	return out, err
}
