package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Create a job, follow its progress until it ends, and print its result.
func Example() {
	c, err := client.New("http://localhost:8080", "user_token_vip",
		client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	id, err := c.CreateJob(ctx, "/jobs/full_showcase", map[string]any{
		"path":    "/s3/bucket/input.mp4",
		"quality": "high",
	}, client.WithWebhook("http://localhost:8000/webhook"))
	if err != nil {
		log.Fatal(err)
	}

	job, err := c.Wait(ctx, id,
		client.PollEvery(500*time.Millisecond),
		client.OnProgress(func(j *protocol.Job) {
			fmt.Printf("%3.0f%% %-20s %s\n", j.Progress*100, j.Status, j.ProgressMessage)
		}))
	if err != nil {
		log.Fatal(err)
	}
	if job.Status != protocol.StatusFinished {
		log.Fatalf("job %s ended %s: %s", job.ID, job.Status, job.ErrorMessage)
	}
	fmt.Println(job.StateHistory["analysis_summary"])
}

// Errors from the server match sentinels with errors.Is, and carry the
// status, message and Retry-After as an *Error.
func ExampleError() {
	c, err := client.New("http://localhost:8080", "user_token_vip")
	if err != nil {
		log.Fatal(err)
	}
	err = c.Approve(context.Background(), "5f0c9a52-0000-0000-0000-000000000000", "approved")
	var apiErr *client.Error
	switch {
	case err == nil:
		fmt.Println("approved")
	case errors.Is(err, client.ErrConflict):
		fmt.Println("the job is not waiting for a decision")
	case errors.Is(err, client.ErrRateLimited) && errors.As(err, &apiErr):
		fmt.Println("slow down; retry in", apiErr.RetryAfter)
	default:
		log.Fatal(err)
	}
}

// Walk every page of the client's running jobs.
func ExampleClient_AllJobs() {
	c, err := client.New("http://localhost:8080", "user_token_vip")
	if err != nil {
		log.Fatal(err)
	}
	for job, err := range c.AllJobs(context.Background(), client.ListOptions{Limit: 50, Status: protocol.StatusRunning}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(job.ID, job.CurrentState)
	}
}
