package figures

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// failing is a store whose Stats writes fail until healed.
type failing struct {
	*memory.Store
	broken bool
}

func (f *failing) AddStats(ctx context.Context, at time.Time, d map[string]int64) error {
	if f.broken {
		return errors.New("down")
	}
	return f.Store.AddStats(ctx, at, d)
}

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	st := &failing{Store: memory.New(memory.Options{}), broken: true}
	r := New(st, nil)
	now := time.Now().UTC()
	prev := now.Add(-time.Minute)
	for _, ev := range []engine.Event{
		{Type: engine.EventJobCreated, Time: now},
		{Type: engine.EventJobCreated, Time: prev},
		{Type: engine.EventJobEnded, Time: now, Detail: map[string]any{"status": "finished"}},
		{Type: engine.EventJobEnded, Time: now, Detail: map[string]any{"status": "error"}},
		{Type: engine.EventJobEnded, Time: now, Detail: map[string]any{"status": "cancelled"}},
		{Type: engine.EventTaskStarted, Time: now, Detail: map[string]any{"queued_for": 0.25}},
		{Type: engine.EventTaskStarted, Time: now, Detail: map[string]any{"queued_for": 0.75}},
		{Type: engine.EventTaskStarted, Time: now}, // no wait known: not counted
		{Type: engine.EventReputation, Time: prev, WorkerID: "w1", Detail: map[string]any{"reputation": 0.9}},
		{Type: engine.EventReputation, Time: now, WorkerID: "w1", Detail: map[string]any{"reputation": 0.8}},
		{Type: engine.EventProgress, Time: now},
	} {
		r.Observe(ev)
	}
	r.Flush(ctx) // the counters fail to be written: kept for the next flush
	st.broken = false
	r.Flush(ctx)
	r.Flush(ctx) // nothing left: nothing added twice
	hour, err := LastHour(ctx, st, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(hour) != 60 || !hour[59].At.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("%d minutes, the last %v", len(hour), hour[len(hour)-1].At)
	}
	last, before := hour[59], hour[58]
	if last.Created != 1 || last.Finished != 1 || last.Failed != 1 || last.Started != 2 || last.WaitMS != 500 || before.Created != 1 {
		t.Errorf("last minute %+v, the one before %+v", last, before)
	}
	samples, err := st.Samples(ctx, ReputationSeries("w1"))
	if err != nil || len(samples) != 1 || samples[0].Value != 0.8 {
		t.Errorf("reputation samples %v %v: want the latest of the interval", samples, err)
	}
}
