package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

func benchStore(b *testing.B) *redisstore.Store {
	url := testenv.URL(b, testenv.RedisVar)
	return openStore(b, redisstore.Options{URL: url, Prefix: newPrefix(b, url)})
}

// BenchmarkUpdateJob is one engine transition: the job is written under
// its version, the previous task leaves its queue, a new one is queued,
// its dispatch timer replaces the last one, and the job is marked ready.
func BenchmarkUpdateJob(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	j := job("bench")
	j.InitialData = map[string]any{"file": "s3://bucket/key", "quality": "high"}
	j.StateHistory = map[string]any{"transcode": map[string]any{"ok": true, "duration": 12.5}}
	if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
		b.Fatal(err)
	}
	prev := ""
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("t%d", i)
		fx := store.Effects{
			Enqueue: []store.QueuedTask{task(id, "w1", float64(i))},
			Timers:  []store.Timer{{JobID: "bench", Kind: store.TimerDispatch, Ref: id, At: time.Now().Add(time.Minute)}},
			Ready:   []string{"bench"},
		}
		if prev != "" {
			fx.Remove = []string{prev}
			fx.Cancel = []string{store.Timer{JobID: "bench", Kind: store.TimerDispatch, Ref: prev}.Key()}
		}
		j.TransitionCount++
		if err := s.UpdateJob(ctx, j, fx); err != nil {
			b.Fatal(err)
		}
		prev = id
	}
}

// BenchmarkClaimTask claims queued tasks one by one.
func BenchmarkClaimTask(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const batch = 1000
	var ids []string
	n := 0
	fill := func() {
		var tasks []store.QueuedTask
		for range batch {
			id := fmt.Sprintf("t%d", n)
			n++
			tasks = append(tasks, task(id, "w1", float64(n)))
			ids = append(ids, id)
		}
		if err := s.CreateJob(ctx, job(fmt.Sprintf("fill-%d", n)), store.Effects{Enqueue: tasks}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(ids) == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		id := ids[0]
		ids = ids[1:]
		if _, err := s.ClaimTask(ctx, id, "w2"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateJobParallel runs transitions of independent jobs from
// many goroutines, as the engine's executors do.
func BenchmarkUpdateJobParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var seq int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		j := job(fmt.Sprintf("p%d-%d", time.Now().UnixNano(), seq))
		if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
			b.Error(err)
			return
		}
		for i := 0; pb.Next(); i++ {
			id := fmt.Sprintf("%s-t%d", j.ID, i)
			fx := store.Effects{
				Enqueue: []store.QueuedTask{task(id, "w1", float64(i))},
				Timers:  []store.Timer{{JobID: j.ID, Kind: store.TimerDispatch, Ref: id, At: time.Now().Add(time.Minute)}},
				Ready:   []string{j.ID},
			}
			if err := s.UpdateJob(ctx, j, fx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReward is a result's write with its reputation reward, in the
// commit (Effects.Rewards) or as a separate AdjustReputation after it, as
// before; redis-µs/op is the server's main-thread CPU per write (INFO cpu:
// meaningful on a Redis nobody else uses).
func BenchmarkReward(b *testing.B) {
	for _, separate := range []bool{false, true} {
		name := "in-commit"
		if separate {
			name = "separate"
		}
		b.Run(name, func(b *testing.B) {
			url := testenv.URL(b, testenv.RedisVar)
			s := openStore(b, redisstore.Options{URL: url, Prefix: newPrefix(b, url)})
			raw := rawClient(b, url)
			defer raw.Close()
			ctx := context.Background()
			j := job("bench")
			if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
				b.Fatal(err)
			}
			before := serverCPU(b, raw)
			for b.Loop() {
				j.TransitionCount++
				fx := store.Effects{Ready: []string{"bench"}}
				if !separate {
					fx.Rewards = []*store.Reward{{Worker: "w1", Delta: 0.01, Initial: 1, Floor: 0, Ceiling: 1}}
				}
				if err := s.UpdateJob(ctx, j, fx); err != nil {
					b.Fatal(err)
				}
				if separate {
					if _, err := s.AdjustReputation(ctx, "w1", 0.01, 1, 0, 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric((serverCPU(b, raw)-before)/float64(b.N), "redis-µs/op")
		})
	}
}

// serverCPU is the server's main-thread CPU time so far, in µs.
func serverCPU(b *testing.B, rdb *goredis.Client) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", k, err)
			}
			total += f * 1e6
		}
	}
	return total
}
