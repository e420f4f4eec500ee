package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// fanOut is a blueprint whose start dispatches n "work" tasks in parallel
// and whose fan-in checks that n branches ended.
func fanOut(name string, n int) *blueprint.Blueprint {
	bp := blueprint.New(name).Start("start", func(c *blueprint.Context) error {
		tasks := make([]blueprint.Task, n)
		for i := range tasks {
			tasks[i] = blueprint.Task{Type: "work", Params: map[string]any{"i": i}}
		}
		return c.DispatchParallel(tasks)
	}, blueprint.FanIn("join"))
	bp.Aggregator("join", func(c *blueprint.Context) error {
		if len(c.Branches()) != n {
			return fmt.Errorf("%d branches, want %d", len(c.Branches()), n)
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	bp.End("finished", nil)
	return bp
}

// BenchmarkFanOutWidth runs one fan-out of N branches per iteration
// through the engine on the memory store; the time per branch should not
// grow with N (go test -bench FanOutWidth -benchtime 1x ./internal/engine).
func BenchmarkFanOutWidth(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bp := fanOut("fan", n)
			en := newEnv(b, Config{}, bp)
			for i := range 4 {
				en.start(&fakeWorker{id: fmt.Sprint("w", i), skills: map[string]float64{"work": 1}, handle: ok(nil)})
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				j := en.create("fan", nil)
				for { // the header only: reading the whole job would cost O(N) per look
					h, err := en.store.LoadJob(en.ctx, j.ID)
					if err != nil {
						b.Fatal(err)
					}
					if h.Status.Terminal() {
						if h.Status != protocol.StatusFinished {
							b.Fatalf("job %s", summary(h))
						}
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*n), "µs/branch")
		})
	}
}
