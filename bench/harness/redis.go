package harness

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// RedisMeter counts the commands a go-redis client sends and the round
// trips they take (a pipeline is one), and reads the Redis server's CPU
// time, so that a run can report its cost per job in Redis. Any system
// that talks to Redis through go-redis can be measured with it.
type RedisMeter struct {
	rdb        goredis.UniversalClient
	commands   atomic.Int64
	roundTrips atomic.Int64
	base       map[string]float64 // each server's µs at Reset

	mu     sync.Mutex
	byName map[string]int64 // command (or script) name → count
}

// NewRedisMeter hooks a meter into rdb; the servers it reads are rdb's (a
// Client's server, or a ClusterClient's masters).
func NewRedisMeter(rdb goredis.UniversalClient) *RedisMeter {
	m := &RedisMeter{rdb: rdb}
	rdb.AddHook(m)
	return m
}

// Reset starts a measurement.
func (m *RedisMeter) Reset(ctx context.Context) {
	m.commands.Store(0)
	m.roundTrips.Store(0)
	m.mu.Lock()
	m.byName = nil
	m.mu.Unlock()
	m.base = serverMicros(ctx, m.rdb)
}

// Measure fills r's Redis figures per finished job since Reset. Commands
// of other clients count in the server's time, not in the counts.
func (m *RedisMeter) Measure(ctx context.Context, r *Result) {
	if r.Jobs == 0 {
		return
	}
	n := float64(r.Jobs)
	r.RedisCommands = float64(m.commands.Load()) / n
	r.RedisRoundTrips = float64(m.roundTrips.Load()) / n
	// The busiest server bounds the jobs/s: with one server, its time.
	servers := serverMicros(ctx, m.rdb)
	if len(servers) > 1 {
		r.RedisMicrosPerMaster = make(map[string]float64, len(servers))
	}
	for addr, us := range servers {
		perJob := (us - m.base[addr]) / n
		r.RedisMicros = max(r.RedisMicros, perJob)
		if r.RedisMicrosPerMaster != nil {
			r.RedisMicrosPerMaster[addr] = perJob
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r.RedisByCommand = make(map[string]float64, len(m.byName))
	for name, count := range m.byName {
		r.RedisByCommand[name] = float64(count) / n
	}
}

// DialHook implements goredis.Hook.
func (m *RedisMeter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook implements goredis.Hook.
func (m *RedisMeter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		m.commands.Add(1)
		m.roundTrips.Add(1)
		m.count(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements goredis.Hook.
func (m *RedisMeter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		m.commands.Add(int64(len(cmds)))
		m.roundTrips.Add(1)
		m.count(cmds...)
		return next(ctx, cmds)
	}
}

func (m *RedisMeter) count(cmds ...goredis.Cmder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName == nil {
		m.byName = map[string]int64{}
	}
	for _, cmd := range cmds {
		m.byName[commandName(cmd)]++
	}
}

// commandName is a command's name, with EVALSHA named after our store's
// script when it is one.
func commandName(cmd goredis.Cmder) string {
	n := cmd.Name()
	if (n == "evalsha" || n == "evalsha_ro") && len(cmd.Args()) > 1 {
		if sha, ok := cmd.Args()[1].(string); ok {
			if script := redisstore.ScriptName(sha); script != "" {
				return "script:" + script
			}
		}
	}
	return n
}

// serverMicros reads the CPU time of each server's main thread (user +
// system) from INFO cpu, by address: the thread that executes every
// command, so its time per job bounds the jobs/s one Redis (one master of
// a cluster) can carry. It counts everything the server did, so run the
// benchmark on a Redis nobody else uses.
func serverMicros(ctx context.Context, rdb goredis.UniversalClient) map[string]float64 {
	out := map[string]float64{}
	var mu sync.Mutex
	read := func(ctx context.Context, c *goredis.Client) error {
		us := mainThreadMicros(ctx, c)
		mu.Lock()
		out[c.Options().Addr] = us
		mu.Unlock()
		return nil
	}
	eachServer(ctx, rdb, read)
	return out
}

// eachServer calls fn with a Client's server, or with each master of a
// ClusterClient (concurrently).
func eachServer(ctx context.Context, rdb goredis.UniversalClient, fn func(context.Context, *goredis.Client) error) {
	switch c := rdb.(type) {
	case *goredis.ClusterClient:
		_ = c.ForEachMaster(ctx, fn)
	case *goredis.Client:
		_ = fn(ctx, c)
	}
}

func mainThreadMicros(ctx context.Context, rdb *goredis.Client) float64 {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f * 1e6
		}
	}
	return total
}
