package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// sumOver adds up one count per shard, read in one pipeline.
func sumOver(ctx context.Context, rdb goredis.UniversalClient, shards []keys, count func(goredis.Pipeliner, keys) *goredis.IntCmd) (int64, error) {
	cmds, err := pipelined(ctx, rdb, shards, count)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// KeyPatterns are the SCAN MATCH patterns of every key of a deployment
// (its prefix) with the given number of shards: for tools that count or
// delete them. Each names one exact key base (glob characters of the
// prefix escaped), so no key of another deployment matches, not even one
// whose prefix starts with this one's ("avto" and "avto:staging").
// DeploymentKeyPatterns reads the number of shards the deployment recorded.
func KeyPatterns(prefix string, shards int) []string {
	bases := []keys{{base: "{" + prefix + "}:"}}
	if shards > 1 {
		bases = append(bases, shardTags(prefix, shards)...)
	}
	out := make([]string, len(bases))
	for i, k := range bases {
		out[i] = globEscape(k.base) + "*"
	}
	return out
}

// DeploymentKeyPatterns is KeyPatterns with the number of shards the
// deployment recorded ("{prefix}:shards"; one when it recorded none).
func DeploymentKeyPatterns(ctx context.Context, rdb goredis.Cmdable, prefix string) ([]string, error) {
	n, err := rdb.Get(ctx, keys{base: "{" + prefix + "}:"}.shardCount()).Int()
	if errors.Is(err, goredis.Nil) {
		n = 1
	} else if err != nil {
		return nil, fmt.Errorf("redis store: read shard count of %q: %w", prefix, err)
	}
	return KeyPatterns(prefix, n), nil
}

// globEscape escapes the characters SCAN MATCH patterns give a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\*?[]^`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// KeysPerMaster counts the keys of a deployment (its prefix, all shards)
// on each master of a Cluster, by address: how evenly the deployment
// spreads (for benchmarks and tests).
func KeysPerMaster(ctx context.Context, c *goredis.ClusterClient, prefix string) (map[string]int, error) {
	matches, err := DeploymentKeyPatterns(ctx, c, prefix)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := map[string]int{}
	err = c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		n := 0
		for _, match := range matches {
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
