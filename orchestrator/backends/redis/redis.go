// Package redis links the Redis live store (package store/redis) into the
// orchestrator: import it for its side effect to let Config.RedisURL
// (REDIS_URL, REDIS_HOST) choose it.
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"
package redis

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

func init() { backend.Register(backend.Redis, backend.Backend{OpenStore: open}) }

func open(ctx context.Context, o backend.StoreOptions) (store.Store, error) {
	st, err := redisstore.Open(ctx, redisstore.Options{
		URL: o.URL, Cluster: o.Cluster, Shards: o.Shards, Prefix: o.Prefix, PoolSize: o.PoolSize, Retention: o.Retention,
	})
	if err != nil {
		return nil, err
	}
	// Without AOF a Redis restart loses jobs (detected by the orchestrator,
	// but lost all the same).
	if aof, err := st.AppendOnly(ctx); err == nil && !aof && o.Logger != nil {
		o.Logger.Warn("Redis runs without persistence (appendonly no): a Redis restart loses every job in flight; run it with appendonly yes")
	}
	return st, nil
}
