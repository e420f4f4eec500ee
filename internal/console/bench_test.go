package console_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historydb"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// BenchmarkJobsList100k renders the jobs list as the admin (first page of
// 50) and, apart, its counts by status (which the page loads after itself)
// over HTTP with 100,000 ended jobs in a SQLite history: ns/op is the
// server's time plus a loopback round trip.
//
//	go test -run '^$' -bench JobsList100k -benchtime 20x ./internal/console/
func BenchmarkJobsList100k(b *testing.B) {
	const n = 100_000
	uri := "sqlite:" + filepath.Join(b.TempDir(), "history.db")
	fillHistory(b, uri, n)
	cfg := baseConfig()
	cfg.HistoryURI = uri
	br := newBrowser(b, serve(b, cfg))
	br.login(adminToken)
	for _, path := range []string{"/console/jobs", "/console/jobs?status=finished", "/console/jobs?blueprint=review&status=failed", "/console/jobs/counts"} {
		b.Run(strings.TrimPrefix(path, "/console/"), func(b *testing.B) {
			for b.Loop() {
				if status, _, _ := br.get(path); status != http.StatusOK {
					b.Fatalf("GET %s: %d", path, status)
				}
			}
		})
	}
}

// fillHistory writes n ended jobs of two clients into the history at uri,
// a job_ended event (with the job's summary) each.
func fillHistory(b *testing.B, uri string, n int) {
	b.Helper()
	ctx := context.Background()
	hs, err := historydb.Open(ctx, uri)
	if err != nil {
		b.Fatal(err)
	}
	defer hs.Close()
	start := time.Now().Add(-time.Duration(n) * time.Second)
	statuses := []protocol.JobStatus{protocol.StatusFinished, protocol.StatusFinished, protocol.StatusFinished, protocol.StatusFailed, protocol.StatusCancelled}
	batch := make([]history.Event, 0, 1000)
	for i := range n {
		created := start.Add(time.Duration(i) * time.Second)
		client := []string{"alice", "bob"}[i%2]
		id := uuid.NewString()
		st := statuses[i%len(statuses)]
		job := &protocol.Job{ID: id, Blueprint: "review", Status: st, CurrentState: "finished", Progress: 1, Client: client,
			CreatedAt: &created, UpdatedAt: &created, FinishedAt: &created, InitialData: map[string]any{"n": i}}
		batch = append(batch, history.Event{ID: uuid.NewString(), Time: created, Type: history.EventType("job_ended"), JobID: id,
			Blueprint: "review", Client: client, State: "finished", Job: job})
		if len(batch) == cap(batch) || i == n-1 {
			if err := hs.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
