package harness

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// redisCounter counts the commands the orchestrator sends and the round
// trips they take (a pipeline is one), and reads the server's CPU time.
type redisCounter struct {
	rdb        *goredis.Client
	commands   atomic.Int64
	roundTrips atomic.Int64
	base       float64 // server µs at reset

	mu     sync.Mutex
	byName map[string]int64 // command (or script) name → count
}

// name is a command's name, with EVALSHA named after the store's script.
func name(cmd goredis.Cmder) string {
	n := cmd.Name()
	if n == "evalsha" && len(cmd.Args()) > 1 {
		if sha, ok := cmd.Args()[1].(string); ok {
			if script := redisstore.ScriptName(sha); script != "" {
				return "script:" + script
			}
		}
	}
	return n
}

func (c *redisCounter) count(cmds ...goredis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]int64{}
	}
	for _, cmd := range cmds {
		c.byName[name(cmd)]++
	}
}

func (c *redisCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *redisCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.commands.Add(1)
		c.roundTrips.Add(1)
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *redisCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.commands.Add(int64(len(cmds)))
		c.roundTrips.Add(1)
		c.count(cmds...)
		return next(ctx, cmds)
	}
}

func (c *redisCounter) reset(ctx context.Context) {
	c.commands.Store(0)
	c.roundTrips.Store(0)
	c.mu.Lock()
	c.byName = nil
	c.mu.Unlock()
	c.base = serverMicros(ctx, c.rdb)
}

// since returns the commands sent, their round trips and the server's
// main-thread CPU µs spent since reset.
func (c *redisCounter) since(ctx context.Context) (commands, roundTrips int64, micros float64) {
	return c.commands.Load(), c.roundTrips.Load(), serverMicros(ctx, c.rdb) - c.base
}

// breakdown returns the commands by name since reset.
func (c *redisCounter) breakdown() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.byName)
}

// serverMicros reads the CPU time of Redis's main thread (user + system)
// from INFO cpu: the thread that executes every command, so its time per
// job bounds the jobs/s one Redis can carry. It counts everything the server
// did, so run the benchmark on a Redis nobody else uses.
func serverMicros(ctx context.Context, rdb *goredis.Client) float64 {
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
