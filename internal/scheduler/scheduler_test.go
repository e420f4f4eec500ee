package scheduler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

func load(t *testing.T, body string) ([]Schedule, []error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schedules.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p, func(bp string) bool { return bp != "ghost" })
}

func TestLoad(t *testing.T) {
	t.Parallel()
	scheds, errs := load(t, `
[maintenance_task]
blueprint = "periodic_maintenance"
interval_seconds = 60
enabled = true
initial_data = { source = "scheduler", task_type = "cleanup" }

[nightly]
blueprint = "report"
daily_at = "02:30"
timezone = "Europe/Berlin"

[weekly]
blueprint = "report"
time = "09:00"
weekly_days = ["mon", "fri"]

[monthly]
blueprint = "report"
time = "06:15"
monthly_dates = [1, 15]

[cronned]
blueprint = "report"
cron = "*/5 * * * *"

[off]
blueprint = "report"
interval_seconds = 5
enabled = false

[no_blueprint]
interval_seconds = 5
[unknown_blueprint]
blueprint = "ghost"
interval_seconds = 5
[bad_interval]
blueprint = "report"
interval_seconds = -3
[bad_cron]
blueprint = "report"
cron = "every tuesday"
[bad_time]
blueprint = "report"
daily_at = "25:99"
[two_timings]
blueprint = "report"
interval_seconds = 5
cron = "* * * * *"
[no_timing]
blueprint = "report"
[bad_zone]
blueprint = "report"
daily_at = "01:00"
timezone = "Mars/Olympus"
[bad_day]
blueprint = "report"
time = "01:00"
weekly_days = ["someday"]
`)
	got := map[string]Schedule{}
	for _, s := range scheds {
		got[s.Name] = s
	}
	if len(got) != 5 {
		t.Fatalf("valid schedules: %v", got)
	}
	m := got["maintenance_task"]
	if m.Interval != time.Minute || m.InitialData["source"] != "scheduler" || m.Blueprint != "periodic_maintenance" {
		t.Fatalf("maintenance %+v", m)
	}
	if got["nightly"].Spec != "30 2 * * *" || got["nightly"].Location.String() != "Europe/Berlin" {
		t.Fatalf("nightly %+v", got["nightly"])
	}
	if got["weekly"].Spec != "0 9 * * mon,fri" || got["monthly"].Spec != "15 6 1,15 * *" {
		t.Fatalf("weekly %q monthly %q", got["weekly"].Spec, got["monthly"].Spec)
	}
	bad := map[string]bool{}
	for _, err := range errs {
		for _, name := range []string{"no_blueprint", "unknown_blueprint", "bad_interval", "bad_cron", "bad_time", "two_timings", "no_timing", "bad_zone", "bad_day"} {
			if strings.Contains(err.Error(), `"`+name+`"`) {
				bad[name] = true
			}
		}
	}
	if len(bad) != 9 || len(errs) != 9 {
		t.Fatalf("bad entries reported: %v (%d errors: %v)", bad, len(errs), errs)
	}
}

func TestNextTicks(t *testing.T) {
	t.Parallel()
	scheds, _ := load(t, `
[nightly]
blueprint = "r"
daily_at = "02:30"
timezone = "Europe/Berlin"
[weekly]
blueprint = "r"
time = "09:00"
weekly_days = ["mon"]
[every]
blueprint = "r"
interval_seconds = 60
`)
	by := map[string]Schedule{}
	for _, s := range scheds {
		by[s.Name] = s
	}
	base := time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC) // a Thursday
	if n := by["nightly"].Next(base); !n.Equal(time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("nightly next %v (02:30 Berlin is 01:30 UTC in winter)", n.UTC())
	}
	if n := by["weekly"].Next(base); !n.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("weekly next %v", n.UTC())
	}
	if n := by["every"].Next(base); !n.Equal(time.Date(2026, 11, 26, 12, 1, 0, 0, time.UTC)) {
		t.Errorf("interval next %v", n.UTC())
	}
}

// Three schedulers on one store start each tick once, right away for a
// schedule that never ran, then once per interval.
func TestOneJobPerTickAcrossOrchestrators(t *testing.T) {
	t.Parallel()
	scheds, errs := load(t, "[fast]\nblueprint = \"r\"\ninterval_seconds = 1\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := memory.New(memory.Options{})
	var mu sync.Mutex
	var runs []Run
	var created atomic.Int64
	start := func(context.Context, Schedule) (string, error) {
		return fmt.Sprintf("job-%d", created.Add(1)), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		s := New(scheds, st, start, nil, func(_ Schedule, r Run) { mu.Lock(); runs = append(runs, r); mu.Unlock() })
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	wg.Wait()
	ticks := map[time.Time]int{}
	for _, r := range runs {
		ticks[r.Tick]++
	}
	for tick, n := range ticks {
		if n != 1 {
			t.Fatalf("tick %v started %d jobs", tick, n)
		}
	}
	if c := created.Load(); c < 3 || c > 4 {
		t.Fatalf("%d jobs in 2.5 s of a 1 s schedule (first at once)", c)
	}
	last, ok, err := New(scheds, st, start, nil, nil).LastRun(context.Background(), "fast")
	if err != nil || !ok || last.JobID == "" {
		t.Fatalf("last run %+v %v %v", last, ok, err)
	}
	// The recent runs: every run, newest first, the first being the last.
	recent, err := New(scheds, st, start, nil, nil).RecentRuns(context.Background(), "fast")
	if err != nil || len(recent) != int(created.Load()) || recent[0] != last {
		t.Fatalf("recent runs %+v %v, want %d runs, the newest %+v", recent, err, created.Load(), last)
	}
	for i := 1; i < len(recent); i++ {
		if !recent[i].Tick.Before(recent[i-1].Tick) || recent[i].JobID == "" {
			t.Fatalf("recent runs not newest first with their jobs: %+v", recent)
		}
	}
}

// RecentRuns keeps the latest KeepRuns runs.
func TestRecentRunsKeepsTheLatest(t *testing.T) {
	st := memory.New(memory.Options{})
	s := New(nil, st, nil, nil, nil)
	ctx := context.Background()
	for i := range KeepRuns + 3 {
		if err := s.recordRecent(ctx, "x", Run{JobID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.RecentRuns(ctx, "x")
	if err != nil || len(runs) != KeepRuns || runs[0].JobID != fmt.Sprint(KeepRuns+2) || runs[KeepRuns-1].JobID != "3" {
		t.Fatalf("recent runs %+v %v", runs, err)
	}
}

// slowReads delays every GetValue so that concurrent read-modify-writes of
// one key interleave.
type slowReads struct{ store.Store }

func (s slowReads) GetValue(ctx context.Context, key string) (string, error) {
	time.Sleep(50 * time.Millisecond)
	return s.Store.GetValue(ctx, key)
}

// Runs recorded at once by several orchestrators (consecutive ticks, the
// later one recorded first) are all kept, newest tick first.
func TestRecentRunsConcurrentRecords(t *testing.T) {
	t.Parallel()
	s := New(nil, slowReads{memory.New(memory.Options{})}, nil, nil, nil)
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(2-i) * 5 * time.Millisecond) // the latest tick records first
			if err := s.recordRecent(ctx, "x", Run{Tick: base.Add(time.Duration(i) * time.Second), JobID: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	runs, err := s.RecentRuns(ctx, "x")
	if err != nil || len(runs) != 3 || runs[0].JobID != "2" || runs[1].JobID != "1" || runs[2].JobID != "0" {
		t.Fatalf("recent runs %+v %v, want jobs 2, 1, 0", runs, err)
	}
}
