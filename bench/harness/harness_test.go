package harness

import (
	"context"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
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
