package harness

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// TestSmoke keeps the harness working: every workload runs for five
// seconds at a gentle open-loop rate on each backend, and every job must
// finish. It asserts no speed; the benchmark command measures that.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke runs take five seconds each")
	}
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "redis" {
				url = testenv.URL(t, "AVTO_TEST_REDIS_URL")
			}
			for _, wl := range Workloads {
				t.Run(wl, func(t *testing.T) { smoke(t, wl, backend, url) })
			}
		})
	}
}

func smoke(t *testing.T, workload, backend, redisURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{
		Workload: workload, Backend: backend, RedisURL: redisURL,
		Workers: 2, Concurrency: 8, Clients: 4, Rate: 40, Duration: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if want := 200; r.Jobs != want || r.Failed != 0 {
		t.Fatalf("%d jobs finished and %d failed, want %d and 0", r.Jobs, r.Failed, want)
	}
	if r.P50 <= 0 || r.Max < r.P99 || r.P99 < r.P50 {
		t.Fatalf("latency percentiles out of order: %s", r)
	}
	if backend == "redis" && r.RedisCommands <= 0 {
		t.Fatalf("no Redis commands counted: %s", r)
	}
}

// TestSmokeCluster runs one-task on a Redis Cluster of three masters (12
// shards) and checks that the keys per master are reported.
func TestSmokeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke runs take five seconds each")
	}
	addrs := testenv.RedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{
		Workload: "one-task", Backend: "redis", RedisCluster: addrs,
		Workers: 2, Concurrency: 8, Clients: 4, Rate: 40, Duration: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Jobs != 200 || r.Failed != 0 || r.RedisCommands <= 0 || len(r.KeysPerMaster) != 3 {
		t.Fatalf("on the cluster: %s", r)
	}
}

// TestStartWorkers: Run's workers come from the hook when it is set, and
// the hook's stop is called before Run returns.
func TestStartWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var started, stopped atomic.Int32
	start := func(ctx context.Context, url, token string) (func(), error) {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 2 {
			w, err := worker.New(worker.Config{
				ID: fmt.Sprintf("hook-worker-%d", i), Token: token, Orchestrators: []worker.Orchestrator{{URL: url}},
				MaxConcurrentTasks: 4, Resources: worker.Resources{DisableDetection: true, CPUCores: 1},
			})
			if err != nil {
				cancel()
				return nil, err
			}
			w.Handle("noop", func(context.Context, *worker.Task) (worker.Result, error) { return worker.Result{}, nil })
			wg.Go(func() { _ = w.Run(ctx) })
			started.Add(1)
		}
		return func() { cancel(); wg.Wait(); stopped.Add(1) }, nil
	}
	r, err := Run(ctx, Options{Workload: "one-task", Workers: 2, Concurrency: 4, Clients: 2, Jobs: 50, Warmup: -1, StartWorkers: start})
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 50 || r.Failed != 0 {
		t.Fatalf("%d jobs finished and %d failed, want 50 and 0", r.Jobs, r.Failed)
	}
	if started.Load() != 2 || stopped.Load() != 1 {
		t.Fatalf("the hook started %d workers and was stopped %d times, want 2 and 1", started.Load(), stopped.Load())
	}
}

// TestCountUnended: jobs that never end fail the run, unless CountUnended
// counts them as failed.
func TestCountUnended(t *testing.T) {
	for _, count := range []bool{false, true} {
		ends := NewEnds()
		var n atomic.Int32
		submit := func(context.Context) (string, error) {
			id := fmt.Sprint("job-", n.Add(1))
			if n.Load()%4 != 0 { // every fourth job is lost
				ends.Ended(id, time.Now(), true)
			}
			return id, nil
		}
		r, err := Drive(context.Background(), Options{Jobs: 20, Clients: 1, Warmup: -1, SettleTimeout: 50 * time.Millisecond, CountUnended: count}, submit, ends)
		switch {
		case !count && err == nil:
			t.Fatalf("lost jobs did not fail the run: %s", r)
		case count && err != nil:
			t.Fatal(err)
		case count && (r.Jobs != 15 || r.Failed != 5):
			t.Fatalf("%d jobs finished and %d failed, want 15 and 5", r.Jobs, r.Failed)
		}
	}
}
