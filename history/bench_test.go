package history

import (
	"context"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// benchEvent is a typical job event: a small Detail and, with job, the
// client view of a job with a little data.
func benchEvent(job bool) Event {
	e := Event{Type: TaskDispatched, JobID: "job-1", Client: "acme", Blueprint: "bp", State: "transcode",
		TaskID: "t1", WorkerID: "gpu-1", Attempt: 1,
		Detail: map[string]any{"strategy": "best_value", "candidates": 3, "reason": "cheapest of 3 eligible"}}
	if job {
		now := time.Now()
		e.Job = &protocol.Job{ID: "job-1", Client: "acme", Blueprint: "bp", Status: protocol.StatusRunning,
			CurrentState: "transcode", CreatedAt: &now, UpdatedAt: &now,
			InitialData:  map[string]any{"file": "s3://bucket/video.mp4", "quality": "high"},
			StateHistory: map[string]any{"analyze": map[string]any{"duration": 12.5, "codec": "h264"}}}
	}
	return e
}

// BenchmarkRecord measures the caller's cost of Record (encoding included)
// with a store that costs nothing.
func BenchmarkRecord(b *testing.B) {
	for _, withJob := range []bool{false, true} {
		name := "detail"
		if withJob {
			name = "detail+job"
		}
		b.Run(name, func(b *testing.B) {
			r := NewRecorder(Nop{}, RecorderOptions{Logger: quiet()})
			ctx := context.Background()
			ev := benchEvent(withJob)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.Record(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
			})
			if err := r.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
