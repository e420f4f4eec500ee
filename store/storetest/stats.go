package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func testStats(t *testing.T, f Factory) {
	s := f(t, Options{})
	ctx := ctxFor(t)
	now := time.Now().UTC()
	this, prev := now.Truncate(time.Minute), now.Truncate(time.Minute).Add(-time.Minute)
	must(t, s.AddStats(ctx, now, map[string]int64{"created": 2, "finished": 1}))
	must(t, s.AddStats(ctx, this.Add(time.Second), map[string]int64{"created": 1, "wait_ms": 250}))
	must(t, s.AddStats(ctx, prev.Add(59*time.Second), map[string]int64{"failed": 3}))
	must(t, s.AddStats(ctx, now, nil))
	// A minute past retention is not kept.
	must(t, s.AddStats(ctx, now.Add(-store.StatsRetention-2*time.Minute), map[string]int64{"created": 7}))
	// Eight orchestrators add at once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if err := s.AddStats(ctx, now, map[string]int64{"dispatched": 1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := s.StatsSince(ctx, now.Add(-store.StatsRetention-5*time.Minute), now)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("minutes %v, want two", got)
	}
	if c := got[this]; c["created"] != 3 || c["finished"] != 1 || c["wait_ms"] != 250 || c["dispatched"] != 200 || len(c) != 4 {
		t.Errorf("this minute %v", c)
	}
	if c := got[prev]; c["failed"] != 3 || len(c) != 1 {
		t.Errorf("the minute before %v", c)
	}
	// Only the minutes asked for.
	got, err = s.StatsSince(ctx, now, now)
	must(t, err)
	if len(got) != 1 || got[this]["created"] != 3 {
		t.Errorf("this minute alone: %v", got)
	}
	got, err = s.StatsSince(ctx, now.Add(time.Hour), now.Add(2*time.Hour))
	must(t, err)
	if len(got) != 0 {
		t.Errorf("future minutes: %v", got)
	}

	// Series: the newest limit samples, ordered by time whatever the order
	// they came in.
	for i, v := range []float64{1, 0.9, 0.8, 0.75, 0.7} {
		at := now.Add(time.Duration(i) * time.Second)
		if i == 3 {
			at = now.Add(-time.Hour) // a late sample of another orchestrator
		}
		must(t, s.AppendSample(ctx, "reputation:w1", store.Sample{At: at, Value: v}, 3, time.Hour))
	}
	samples, err := s.Samples(ctx, "reputation:w1")
	must(t, err)
	if len(samples) != 3 || samples[0].Value != 0.75 || samples[1].Value != 0.8 || samples[2].Value != 0.7 ||
		!samples[2].At.Equal(now.Add(4*time.Second)) {
		t.Errorf("samples %v", samples)
	}
	if none, err := s.Samples(ctx, "reputation:nobody"); err != nil || len(none) != 0 || none == nil {
		t.Errorf("an unknown series: %v %v (want empty, not nil)", none, err)
	}
	// A series expires ttl after its last sample.
	must(t, s.AppendSample(ctx, "short", store.Sample{At: now, Value: 1}, 10, 150*time.Millisecond))
	time.Sleep(400 * time.Millisecond)
	if left, err := s.Samples(ctx, "short"); err != nil || len(left) != 0 {
		t.Errorf("expired series: %v %v", left, err)
	}
}
