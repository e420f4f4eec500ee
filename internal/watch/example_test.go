package watch_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/watch"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// The showcase client: create a job, follow it on one live line, then print
// how it ended.
func Example() {
	c, err := client.New("http://localhost:8080", "user_token_vip")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.CreateJob(ctx, "/jobs/full_showcase", map[string]any{
		"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": true,
	})
	if err != nil {
		log.Fatal(err)
	}
	job, err := watch.Job(ctx, c, id, os.Stdout, watch.PollEvery(500*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	if err := watch.Summary(os.Stdout, job); err != nil {
		log.Fatal(err)
	}
	if job.Status != protocol.StatusFinished {
		os.Exit(1)
	}
}
