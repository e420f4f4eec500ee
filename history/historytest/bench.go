package historytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// BenchmarkAppend measures a backend's Append of batches of size events
// (one job snapshot every 5 events, as a recorder would send them). Report
// events/s with b.N batches.
func BenchmarkAppend(b *testing.B, s history.Store, size int) {
	ctx := context.Background()
	now := time.Now()
	batches := make([][]history.Event, b.N)
	for i := range batches {
		for k := range size {
			job := fmt.Sprint("job-", i*size/20+k/20)
			e := history.Event{ID: uuid.NewString(), Time: now.Add(time.Duration(i*size+k) * time.Microsecond),
				Type: history.Progress, JobID: job, Client: "acme", Blueprint: "bp", State: "run",
				Detail: map[string]any{"progress": float64(k) / float64(size), "message": "working"}}
			if k%5 == 0 {
				t := e.Time
				e.Job = &protocol.Job{ID: job, Client: "acme", Blueprint: "bp", Status: protocol.StatusRunning,
					CreatedAt: &now, UpdatedAt: &t, InitialData: map[string]any{"file": "a.mp4"}}
			}
			batches[i] = append(batches[i], e)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := s.Append(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
}
