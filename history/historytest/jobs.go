package historytest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func testSummary(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	pending := snapshot("job-s", "acme", "transcode", protocol.StatusPending, at(0), at(0))
	created := jobEvent(pending)
	created.Type = history.JobCreated
	must(t, s.Append(ctx, []history.Event{created}))
	j, err := s.Job(ctx, "job-s")
	must(t, err)
	if j.Status != protocol.StatusPending || j.Client != "acme" || j.Blueprint != "transcode" || j.FinishedAt != nil {
		t.Fatalf("summary after creation: %+v", j)
	}
	if !sameTime(j.CreatedAt, at(0)) || j.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at %v, want %v in UTC", j.CreatedAt, at(0))
	}

	// Two moves in one batch: the later one wins.
	running := snapshot("job-s", "acme", "transcode", protocol.StatusRunning, at(0), at(1))
	waiting := snapshot("job-s", "acme", "transcode", protocol.StatusWaitingForWorker, at(0), at(2))
	must(t, s.Append(ctx, []history.Event{jobEvent(running), jobEvent(waiting)}))
	j, err = s.Job(ctx, "job-s")
	must(t, err)
	if j.Status != protocol.StatusWaitingForWorker || j.CurrentState != "waiting_for_worker-state" {
		t.Fatalf("summary after two moves: %+v", j)
	}

	// An event without a snapshot leaves the summary alone.
	must(t, s.Append(ctx, []history.Event{event(history.Progress, "job-s", at(3))}))

	// The end: status, finished_at, error and result are kept; created_at
	// does not move even if a snapshot says otherwise.
	failed := snapshot("job-s", "acme", "transcode", protocol.StatusFailed, at(100), at(4))
	failed.ErrorMessage = "worker gave up"
	failed.ParentJobID = "parent-1"
	must(t, s.Append(ctx, []history.Event{jobEvent(failed)}))
	j, err = s.Job(ctx, "job-s")
	must(t, err)
	if j.Status != protocol.StatusFailed || j.ErrorMessage != "worker gave up" || j.ParentJobID != "parent-1" {
		t.Fatalf("summary after the end: %+v", j)
	}
	if j.FinishedAt == nil || !sameTime(j.FinishedAt, at(4)) || !sameTime(j.UpdatedAt, at(4)) {
		t.Fatalf("finished_at %v updated_at %v, want %v", j.FinishedAt, j.UpdatedAt, at(4))
	}
	if !sameTime(j.CreatedAt, at(0)) {
		t.Fatalf("created_at moved to %v", j.CreatedAt)
	}
	if !reflect.DeepEqual(j.Result, map[string]any{"ok": false}) || !reflect.DeepEqual(j.InitialData, map[string]any{"file": "a.mp4"}) {
		t.Fatalf("view not kept: result %v, initial data %v", j.Result, j.InitialData)
	}
	got, err := s.JobEvents(ctx, "job-s")
	must(t, err)
	if len(got) != 5 || got[0].Client != "acme" || got[0].Blueprint != "transcode" {
		t.Fatalf("events of the job: %s (client and blueprint come from the snapshot)", dump(got))
	}
}

func testStaleSummary(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	done := snapshot("job-o", "acme", "bp", protocol.StatusFinished, at(0), at(5))
	must(t, s.Append(ctx, []history.Event{jobEvent(done)}))
	// An older snapshot arriving late (another orchestrator, a retry) does
	// not move the job back.
	old := snapshot("job-o", "acme", "bp", protocol.StatusRunning, at(0), at(2))
	must(t, s.Append(ctx, []history.Event{jobEvent(old)}))
	j, err := s.Job(ctx, "job-o")
	must(t, err)
	if j.Status != protocol.StatusFinished || j.FinishedAt == nil {
		t.Fatalf("a stale snapshot moved the job back: %+v", j)
	}
	// Snapshots without times take the event's time.
	bare := &protocol.Job{ID: "job-bare", Client: "acme", Status: protocol.StatusPending}
	e := event(history.JobCreated, "", at(7))
	e.Job = bare
	must(t, s.Append(ctx, []history.Event{e}))
	j, err = s.Job(ctx, "job-bare")
	must(t, err)
	if !sameTime(j.CreatedAt, at(7)) || !sameTime(j.UpdatedAt, at(7)) {
		t.Fatalf("bare snapshot: created %v updated %v, want the event time %v", j.CreatedAt, j.UpdatedAt, at(7))
	}
}

func testNotFound(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	if _, err := s.Job(ctx, "nope"); !errors.Is(err, history.ErrNotFound) {
		t.Fatalf("Job(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.JobEvents(ctx, "nope"); !errors.Is(err, history.ErrNotFound) {
		t.Fatalf("JobEvents(unknown) = %v, want ErrNotFound", err)
	}
	// A job with events but no snapshot has no summary.
	must(t, s.Append(ctx, []history.Event{event(history.Progress, "job-nosnap", at(0))}))
	if _, err := s.Job(ctx, "job-nosnap"); !errors.Is(err, history.ErrNotFound) {
		t.Fatalf("Job(no snapshot) = %v, want ErrNotFound", err)
	}
	for _, c := range []string{"garbage", "12", ":x", "x:y", "99:"} {
		if _, _, err := s.ListJobs(ctx, history.JobFilter{Cursor: c}); !errors.Is(err, history.ErrInvalidCursor) {
			t.Fatalf("ListJobs(cursor %q) = %v, want ErrInvalidCursor", c, err)
		}
	}
}

func testListFilters(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	type spec struct {
		id, client, bp string
		status         protocol.JobStatus
		created        int
	}
	specs := []spec{
		{"a1", "acme", "transcode", protocol.StatusFinished, 10},
		{"a2", "acme", "transcode", protocol.StatusFailed, 20},
		{"a3", "acme", "report", protocol.StatusRunning, 30},
		{"a4", "acme", "report", protocol.StatusFinished, 40},
		{"b1", "beta", "transcode", protocol.StatusFinished, 15},
		{"b2", "beta", "report", protocol.StatusCancelled, 35},
	}
	var batch []history.Event
	for _, sp := range specs {
		batch = append(batch, jobEvent(snapshot(sp.id, sp.client, sp.bp, sp.status, at(sp.created), at(sp.created+1))))
	}
	must(t, s.Append(ctx, batch))
	for _, tc := range []struct {
		name string
		f    history.JobFilter
		want []string
	}{
		{"all", history.JobFilter{}, []string{"a4", "b2", "a3", "a2", "b1", "a1"}},
		{"client", history.JobFilter{Client: "acme"}, []string{"a4", "a3", "a2", "a1"}},
		{"other client", history.JobFilter{Client: "beta"}, []string{"b2", "b1"}},
		{"unknown client", history.JobFilter{Client: "nobody"}, nil},
		{"status", history.JobFilter{Status: protocol.StatusFinished}, []string{"a4", "b1", "a1"}},
		{"client and status", history.JobFilter{Client: "acme", Status: protocol.StatusFinished}, []string{"a4", "a1"}},
		{"blueprint", history.JobFilter{Blueprint: "report"}, []string{"a4", "b2", "a3"}},
		{"client and blueprint", history.JobFilter{Client: "beta", Blueprint: "transcode"}, []string{"b1"}},
		{"from (inclusive)", history.JobFilter{From: at(20)}, []string{"a4", "b2", "a3", "a2"}},
		{"to (exclusive)", history.JobFilter{To: at(20)}, []string{"b1", "a1"}},
		{"range", history.JobFilter{From: at(15), To: at(35)}, []string{"a3", "a2", "b1"}},
		{"range in another zone", history.JobFilter{From: at(15).In(time.FixedZone("x", -7*3600)), To: at(35).UTC()}, []string{"a3", "a2", "b1"}},
		{"everything", history.JobFilter{Client: "acme", Status: protocol.StatusFinished, Blueprint: "report", From: at(0), To: at(100)}, []string{"a4"}},
	} {
		got, next, err := s.ListJobs(ctx, tc.f)
		must(t, err)
		if !slices.Equal(ids(got), tc.want) || next != "" {
			t.Errorf("%s: got %v (next %q), want %v", tc.name, ids(got), next, tc.want)
		}
	}
	got, _, err := s.ListJobs(ctx, history.JobFilter{Client: "beta", Status: protocol.StatusCancelled})
	must(t, err)
	if len(got) != 1 || got[0].Blueprint != "report" || got[0].FinishedAt == nil || got[0].InitialData["file"] != "a.mp4" {
		t.Fatalf("listed job lacks its view: %+v", got)
	}
}

// pageAll reads every page of f, failing on a repeated or endless cursor.
func pageAll(t *testing.T, s history.Store, f history.JobFilter) (pages [][]string) {
	t.Helper()
	ctx := ctxFor(t)
	seen := map[string]bool{}
	for {
		got, next, err := s.ListJobs(ctx, f)
		must(t, err)
		if len(got) > max(f.Limit, 1) {
			t.Fatalf("page of %d jobs with limit %d", len(got), f.Limit)
		}
		pages = append(pages, ids(got))
		if next == "" {
			return pages
		}
		if seen[next] || len(pages) > 1000 {
			t.Fatalf("cursor %q repeats", next)
		}
		seen[next] = true
		f.Cursor = next
	}
}

func testPagination(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	// 25 jobs, three at a time created at the same instant.
	var batch []history.Event
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("job-%02d", i)
		client := "acme"
		if i%5 == 4 {
			client = "beta"
		}
		created := at(i / 3)
		batch = append(batch, jobEvent(snapshot(id, client, "bp", protocol.StatusFinished, created, created)))
		if client == "acme" {
			want = append(want, id)
		}
	}
	must(t, s.Append(ctx, batch))
	// Newest first; ties by ID descending.
	slices.SortFunc(want, func(a, b string) int {
		var x, y int
		fmt.Sscanf(a, "job-%d", &x)
		fmt.Sscanf(b, "job-%d", &y)
		if x/3 != y/3 {
			return y/3 - x/3
		}
		return strings.Compare(b, a)
	})
	for _, limit := range []int{1, 2, 3, 7, 20, 100} {
		pages := pageAll(t, s, history.JobFilter{Client: "acme", Limit: limit})
		var got []string
		for i, p := range pages {
			if i < len(pages)-1 && len(p) != limit {
				t.Fatalf("limit %d: page %d has %d jobs", limit, i, len(p))
			}
			got = append(got, p...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: pages give\n%v\nwant\n%v", limit, got, want)
		}
	}
	// A last page exactly full has no next page either way, but never
	// repeats or loses a job (checked above); limit 0 means the default.
	got, next, err := s.ListJobs(ctx, history.JobFilter{Client: "acme"})
	must(t, err)
	if len(got) != len(want) || next != "" {
		t.Fatalf("default limit: %d jobs, next %q", len(got), next)
	}
}

func testCursorStable(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	var batch []history.Event
	for i := range 10 {
		batch = append(batch, jobEvent(snapshot(fmt.Sprint("old-", i), "acme", "bp", protocol.StatusRunning, at(i), at(i))))
	}
	must(t, s.Append(ctx, batch))
	first, next, err := s.ListJobs(ctx, history.JobFilter{Limit: 4})
	must(t, err)
	// New jobs, and a status change of a listed job, between pages.
	must(t, s.Append(ctx, []history.Event{
		jobEvent(snapshot("new-1", "acme", "bp", protocol.StatusPending, at(50), at(50))),
		jobEvent(snapshot("old-9", "acme", "bp", protocol.StatusFinished, at(9), at(60))),
		jobEvent(snapshot("old-5", "acme", "bp", protocol.StatusFinished, at(5), at(61))),
	}))
	second, _, err := s.ListJobs(ctx, history.JobFilter{Limit: 4, Cursor: next})
	must(t, err)
	if !slices.Equal(ids(first), []string{"old-9", "old-8", "old-7", "old-6"}) ||
		!slices.Equal(ids(second), []string{"old-5", "old-4", "old-3", "old-2"}) {
		t.Fatalf("pages %v then %v", ids(first), ids(second))
	}
	if second[0].Status != protocol.StatusFinished {
		t.Fatalf("page shows a stale summary: %+v", second[0])
	}
}

func testConcurrentSummaries(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	const writers, each = 6, 20
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for i := range each {
				// Every writer touches every job, in its own order, with
				// interleaved update times.
				var batch []history.Event
				for k := range 4 {
					job := fmt.Sprint("job-", (k+w)%4)
					n := i*writers + w
					status := protocol.StatusRunning
					if n == writers*each-1 {
						status = protocol.StatusFinished
					}
					batch = append(batch, jobEvent(snapshot(job, "acme", "bp", status, at(0), at(1+n))))
				}
				if err := s.Append(ctx, batch); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for k := range 4 {
		j, err := s.Job(ctx, fmt.Sprint("job-", k))
		must(t, err)
		if j.Status != protocol.StatusFinished || !sameTime(j.UpdatedAt, at(writers*each)) {
			t.Fatalf("job-%d ended as %s at %v, want the newest snapshot", k, j.Status, j.UpdatedAt)
		}
	}
	got, _, err := s.ListJobs(ctx, history.JobFilter{})
	must(t, err)
	if len(got) != 4 {
		t.Fatalf("listed %d jobs, want 4", len(got))
	}
}
