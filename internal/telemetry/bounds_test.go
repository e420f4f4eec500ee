package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// registerMany stores n workers, each with an id, a skill and a status of
// its own: what a stream of registrations (and heartbeats carrying any
// status) leaves in the store.
func registerMany(t *testing.T, st store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		w := &store.Worker{ID: fmt.Sprintf("wrk-%05d", i), Status: fmt.Sprintf("status-%d", i),
			Skills: []protocol.SkillInfo{{Name: fmt.Sprintf("skill_%05d", i)}}}
		if err := st.PutWorker(ctx, w, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetReputation(ctx, "wrk-00042", 0.25); err != nil {
		t.Fatal(err)
	}
}

// seriesCount counts the series of the orchestrator's own families (the Go
// runtime and process collectors left out) and returns the exposition.
func seriesCount(t *testing.T, m *Metrics) (map[string]int, string) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), ns+"_") {
			counts[f.GetName()] = len(f.Metric)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return counts, string(body)
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// TestWorkerRegistrationsDoNotGrowSeries: 3,000 registrations, each with a
// new worker id, skill name and status, used to add a reputation, a load,
// a queue-depth and a status series each (the public exposition listed
// every worker id). By default no worker id appears and the series stay
// within fixed bounds; METRICS_WORKER_LABELS names up to its bound of
// workers and puts the rest in worker="(other)".
func TestWorkerRegistrationsDoNotGrowSeries(t *testing.T) {
	t.Parallel()
	const workers = 3000
	st := memory.New(memory.Options{})
	registerMany(t, st, workers)

	m := New(st, Options{})
	counts, body := seriesCount(t, m)
	if strings.Contains(body, "wrk-0") {
		t.Error("the exposition names workers without METRICS_WORKER_LABELS")
	}
	for family, want := range map[string]int{
		ns + "_worker_reputation": 1, ns + "_worker_load": 1, ns + "_workers": len(workerStatuses) + 1, ns + "_task_queue_depth": maxQueueTypes,
	} {
		if counts[family] != want {
			t.Errorf("%s has %d series, want %d", family, counts[family], want)
		}
	}
	if n := total(counts); n > maxQueueTypes+200 {
		t.Errorf("%d series after %d registrations", n, workers)
	}
	if s := series(t, m, ns+"_worker_reputation", map[string]string{"worker": OtherLabel}); s == nil || s.GetGauge().GetValue() != 0.25 {
		t.Errorf("reputation of (other) = %v, want the lowest, 0.25", s)
	}
	if s := series(t, m, ns+"_workers", map[string]string{"status": "other"}); s == nil || s.GetGauge().GetValue() != workers {
		t.Errorf("workers of unknown statuses = %v, want %d", s, workers)
	}

	m = New(st, Options{WorkerLabels: true, MaxWorkerLabels: 10})
	counts, body = seriesCount(t, m)
	if counts[ns+"_worker_reputation"] != 11 || counts[ns+"_worker_load"] != 11 {
		t.Errorf("with worker labels bounded at 10: %d reputation and %d load series, want 11", counts[ns+"_worker_reputation"], counts[ns+"_worker_load"])
	}
	if !strings.Contains(body, `worker="wrk-00009"`) || strings.Contains(body, `worker="wrk-00010"`) {
		t.Error("the first ten workers in id order should have series of their own, and only they")
	}
	if s := series(t, m, ns+"_worker_reputation", map[string]string{"worker": OtherLabel}); s == nil || s.GetGauge().GetValue() != 0.25 {
		t.Errorf("reputation of (other) = %v, want 0.25", s)
	}

	// The default bound applies when none is given.
	counts, _ = seriesCount(t, New(st, Options{WorkerLabels: true}))
	if counts[ns+"_worker_reputation"] != DefaultMaxWorkerLabels+1 {
		t.Errorf("default bound: %d reputation series", counts[ns+"_worker_reputation"])
	}
}

// TestQueueDepthKeepsDeepQueues: past the bound on task types, the types
// with the most waiting tasks keep their series and the rest are summed,
// so that no waiting task goes uncounted.
func TestQueueDepthKeepsDeepQueues(t *testing.T) {
	t.Parallel()
	depth := map[string]float64{}
	for i := range 10 {
		depth[fmt.Sprintf("t%d", i)] = float64(i)
	}
	got := boundTypes(depth, 4)
	if len(got) != 4 || got["t9"] != 9 || got["t8"] != 8 || got["t7"] != 7 || got[OtherLabel] != 0+1+2+3+4+5+6 {
		t.Fatalf("bounded: %v", got)
	}
	if got := boundTypes(map[string]float64{"a": 1}, 4); len(got) != 1 || got["a"] != 1 {
		t.Fatalf("under the bound: %v", got)
	}
}
