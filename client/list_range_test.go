package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestJobsTimeRange(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, protocol.JobList{Jobs: []protocol.Job{}})
	})
	c := f.client()
	ctx := context.Background()
	// A time zone other than UTC and sub-second precision: the query
	// carries the same instant, in UTC, to the nanosecond.
	from := time.Date(2026, 3, 1, 12, 30, 15, 123456789, time.FixedZone("CET", 3600))
	to := from.Add(90 * time.Minute)
	if _, err := c.Jobs(ctx, client.ListOptions{From: from, To: to, Blueprint: "full_showcase"}); err != nil {
		t.Fatal(err)
	}
	q := f.only().Query
	if q.Get("from") != "2026-03-01T11:30:15.123456789Z" || q.Get("to") != "2026-03-01T13:00:15.123456789Z" || q.Get("blueprint") != "full_showcase" {
		t.Fatalf("query %v", q)
	}
	for name, want := range map[string]time.Time{"from": from, "to": to} {
		got, err := time.Parse(time.RFC3339, q.Get(name)) // the server's parser
		if err != nil || !got.Equal(want) {
			t.Errorf("%s = %q parses to %v (%v), want %v", name, q.Get(name), got, err, want)
		}
	}

	// One bound alone; zero times send nothing.
	if _, err := c.Jobs(ctx, client.ListOptions{To: to}); err != nil {
		t.Fatal(err)
	}
	if q := f.requests()[1].Query; q.Has("from") || q.Get("to") == "" {
		t.Errorf("To only: query %v", q)
	}
	if _, err := c.Jobs(ctx, client.ListOptions{From: from}); err != nil {
		t.Fatal(err)
	}
	if q := f.requests()[2].Query; q.Has("to") || q.Get("from") == "" {
		t.Errorf("From only: query %v", q)
	}

	// AllJobs keeps the range on every page.
	f2 := newFake(t)
	listServer(f2, 5)
	for _, err := range f2.client().AllJobs(ctx, client.ListOptions{Limit: 2, From: from, To: to}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs := f2.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Query.Get("from") != "2026-03-01T11:30:15.123456789Z" || r.Query.Get("to") != "2026-03-01T13:00:15.123456789Z" {
			t.Errorf("page %d query %v", i, r.Query)
		}
	}
}
