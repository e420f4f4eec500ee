package historytest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/google/uuid"
)

func testAppendRead(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	created := event(history.JobCreated, "job-a", at(0))
	created.Blueprint, created.Client, created.State = "transcode", "acme", "start"
	created.Detail = map[string]any{"source": "api", "initial_data": map[string]any{"n": 3, "list": []any{"x", 1.5, true, nil}}}
	dispatched := event(history.TaskDispatched, "job-a", at(2))
	dispatched.Blueprint, dispatched.Client, dispatched.State = "transcode", "acme", "transcode"
	dispatched.TaskID, dispatched.WorkerID, dispatched.Attempt = "task-1", "gpu-1", 1
	dispatched.Detail = map[string]any{"strategy": "best_value", "candidates": 3, "reason": "cheapest of 3"}
	entered := event(history.StateEntered, "job-a", at(1))
	entered.State, entered.PrevState = "transcode", "start"
	result := event(history.TaskResult, "job-a", at(3))
	result.TaskID, result.WorkerID, result.Attempt = "task-1", "gpu-1", 1
	result.Detail = map[string]any{"status": "failure", "error": map[string]any{"code": "TRANSIENT_ERROR", "message": "oom"}}
	other := event(history.JobCreated, "job-b", at(1))
	worker := event(history.WorkerRegistered, "", at(1))
	worker.WorkerID = "gpu-1"
	worker.Detail = map[string]any{"skills": []any{"transcode"}}

	// Out of time order, over two batches, mixed with other jobs and a
	// worker-only event.
	must(t, s.Append(ctx, []history.Event{created, dispatched, other}))
	must(t, s.Append(ctx, []history.Event{worker, result, entered}))

	got, err := s.JobEvents(ctx, "job-a")
	must(t, err)
	sameEvents(t, got, created, entered, dispatched, result)
	got, err = s.JobEvents(ctx, "job-b")
	must(t, err)
	sameEvents(t, got, other)
	if got[0].Time.Location() != time.UTC {
		t.Fatalf("time %v is not in UTC", got[0].Time)
	}
	if _, err := s.JobEvents(ctx, ""); !errors.Is(err, history.ErrNotFound) {
		t.Fatalf("JobEvents(\"\") = %v: worker-only events must not show as a job's", err)
	}
}

func testTies(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	var all []history.Event
	for i := range 6 {
		e := event(history.Progress, "job-t", at(5))
		e.State = fmt.Sprint("p", i)
		all = append(all, e)
	}
	first := event(history.JobCreated, "job-t", at(4))
	must(t, s.Append(ctx, all[:3]))
	must(t, s.Append(ctx, append([]history.Event{first}, all[3:]...)))
	got, err := s.JobEvents(ctx, "job-t")
	must(t, err)
	sameEvents(t, got, append([]history.Event{first}, all...)...)
}

func testIdempotent(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	a := event(history.JobCreated, "job-i", at(0))
	b := event(history.StateEntered, "job-i", at(1))
	must(t, s.Append(ctx, []history.Event{a, b}))
	must(t, s.Append(ctx, []history.Event{a, b}))
	// A replay with different content keeps the stored event; a batch of
	// old and new events writes the new ones; the same ID twice in one
	// batch is written once; an upper-case ID is the same UUID.
	changed := a
	changed.State = "changed"
	c := event(history.TaskDispatched, "job-i", at(2))
	upper := b
	upper.ID = strings.ToUpper(b.ID)
	must(t, s.Append(ctx, []history.Event{changed, c, c, upper}))
	got, err := s.JobEvents(ctx, "job-i")
	must(t, err)
	sameEvents(t, got, a, b, c)
}

func testInvalidBatch(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	good := event(history.JobCreated, "job-x", at(0))
	for name, bad := range map[string]history.Event{
		"no type": {ID: uuid.NewString(), Time: at(1), JobID: "job-x"},
		"no id":   {Time: at(1), Type: history.Progress, JobID: "job-x"},
		"bad id":  {ID: "42", Time: at(1), Type: history.Progress, JobID: "job-x"},
		"no time": {ID: uuid.NewString(), Type: history.Progress, JobID: "job-x"},
	} {
		err := s.Append(ctx, []history.Event{good, bad})
		if !errors.Is(err, history.ErrInvalidEvent) {
			t.Fatalf("%s: Append = %v, want ErrInvalidEvent", name, err)
		}
	}
	if _, err := s.JobEvents(ctx, "job-x"); !errors.Is(err, history.ErrNotFound) {
		t.Fatalf("a batch with an invalid event was partly written (JobEvents = %v)", err)
	}
	must(t, s.Append(ctx, nil))
}

func testBigUnicode(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	many := map[string]any{}
	for i := range 2000 {
		many[fmt.Sprintf("key-%04d", i)] = i
	}
	var deep any = "bottom"
	for range 60 {
		deep = map[string]any{"d": deep}
	}
	uni := "Привет, 世界 🌍 مرحبا עברית 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 e\u0301"
	e := event(history.TaskResult, "job-ü-"+uni, at(0))
	e.Client, e.Blueprint, e.State, e.PrevState = "клиент", "藍圖", "état-✓", uni
	e.TaskID, e.WorkerID = "задача", "воркер-🚀"
	e.Detail = map[string]any{
		"big": big, "many": many, "deep": deep, "ключ🔑": uni,
		"escaped": `a literal \u0000 stays`, "quotes": `"'\` + "\n\t",
	}
	must(t, s.Append(ctx, []history.Event{e}))
	got, err := s.JobEvents(ctx, e.JobID)
	must(t, err)
	sameEvents(t, got, e)

	// NUL bytes and invalid UTF-8, which PostgreSQL refuses, come back
	// cleaned the same way from every backend.
	dirty := event(history.Progress, "job-dirty", at(1))
	dirty.State = "st\x00ate"
	dirty.WorkerID = "w\xff"
	dirty.Detail = map[string]any{"nul": "a\x00b", "bad\xfekey": "x\xc3"}
	must(t, s.Append(ctx, []history.Event{dirty}))
	got, err = s.JobEvents(ctx, "job-dirty")
	must(t, err)
	want := dirty
	want.State, want.WorkerID = "st\uFFFDate", "w\uFFFD"
	want.Detail = map[string]any{"nul": "a\uFFFDb", "bad\uFFFDkey": "x\uFFFD"}
	sameEvents(t, got, want)
}

func testConcurrent(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	const writers, batches, per = 8, 12, 10
	// Every batch also replays one event of another writer's, so that
	// concurrent transactions insert the same IDs.
	events := make([][]history.Event, writers)
	for w := range writers {
		for i := range batches * per {
			e := event(history.Progress, fmt.Sprint("job-c", i%4), at(i))
			e.WorkerID = fmt.Sprint("w", w)
			events[w] = append(events[w], e)
		}
	}
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for b := range batches {
				batch := append([]history.Event(nil), events[w][b*per:(b+1)*per]...)
				batch = append(batch, events[(w+1)%writers][b*per])
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
	seen := map[string]int{}
	for j := range 4 {
		got, err := s.JobEvents(ctx, fmt.Sprint("job-c", j))
		must(t, err)
		for i, e := range got {
			seen[e.ID]++
			if i > 0 && e.Time.Before(got[i-1].Time) {
				t.Fatalf("events of job-c%d out of time order", j)
			}
		}
	}
	if len(seen) != writers*batches*per {
		t.Fatalf("stored %d distinct events, want %d", len(seen), writers*batches*per)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s stored %d times", id, n)
		}
	}
}
