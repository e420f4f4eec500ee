package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

func taskIDs(j *store.Job) string   { return fmt.Sprint(slices.Sorted(maps.Keys(j.Tasks))) }
func branchIDs(j *store.Job) string { return fmt.Sprint(slices.Sorted(maps.Keys(j.BranchResults))) }
func doneIDs(j *store.Job) string   { return fmt.Sprint(slices.Sorted(maps.Keys(j.DoneTasks))) }

func dispatchTasks(j *store.Job) string {
	var ids []string
	for _, d := range j.Dispatches {
		ids = append(ids, d.TaskID)
	}
	return fmt.Sprint(ids)
}

// testParts: tasks, branch results, final statuses and dispatches are
// records of their own. A write from a copy that loaded some of them
// changes those and adds what is new, and leaves the others alone.
func testParts(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	j := newJob("fan")
	j.Tasks = map[string]*store.TaskRun{}
	// More part records than store.SmallJob, so that LoadJob reads part.
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		j.Tasks[id] = &store.TaskRun{ID: id, Spec: store.TaskSpec{Type: "work"}, Branch: true, Attempt: 1, State: store.TaskQueued}
	}
	j.BranchResults = map[string]store.Result{"x": {TaskID: "x", Status: "success", Data: map[string]any{"n": 1.0}}}
	j.DoneTasks = map[string]string{"x": "success"}
	j.Dispatches = []store.Dispatch{{TaskID: "x", Type: "work", Attempt: 1}}
	must(t, s.CreateJob(ctx, j, store.Effects{}))

	full, err := s.GetJob(ctx, "fan")
	must(t, err)
	if !full.Loaded.All || taskIDs(full) != "[a b c d e f g h]" || branchIDs(full) != "[x]" || doneIDs(full) != "[x]" || dispatchTasks(full) != "[x]" {
		t.Fatalf("full read: tasks %s branches %s done %s dispatches %s", taskIDs(full), branchIDs(full), doneIDs(full), dispatchTasks(full))
	}
	if full.BranchResults["x"].Data["n"] != 1.0 {
		t.Fatalf("branch result %+v", full.BranchResults["x"])
	}

	// A result for task a: its copy holds a and nothing of b or c.
	part, err := s.LoadJob(ctx, "fan", "a", "x", "nope")
	must(t, err)
	if part.Loaded.All || taskIDs(part) != "[a]" || doneIDs(part) != "[x]" || part.BranchResults != nil || part.Dispatches != nil {
		t.Fatalf("partial read: tasks %s done %s branches %v dispatches %v", taskIDs(part), doneIDs(part), part.BranchResults, part.Dispatches)
	}
	if part.Tasks["a"].State != store.TaskQueued || part.InitialData["n"] != 1.0 {
		t.Fatalf("partial read: task %+v, header %+v", part.Tasks["a"], part.InitialData)
	}
	delete(part.Tasks, "a")
	part.DoneTasks["a"] = "success"
	part.BranchResults = map[string]store.Result{"a": {TaskID: "a", Status: "success"}}
	part.Dispatches = append(part.Dispatches, store.Dispatch{TaskID: "a", Type: "work", Attempt: 1})
	part.BranchesDone = 2
	must(t, s.UpdateJob(ctx, part, store.Effects{}))
	// The copy goes on from what it wrote.
	part.Tasks = map[string]*store.TaskRun{}
	part.ProgressMessage = "again"
	must(t, s.UpdateJob(ctx, part, store.Effects{}))

	full, err = s.GetJob(ctx, "fan")
	must(t, err)
	if taskIDs(full) != "[b c d e f g h]" || branchIDs(full) != "[a x]" || doneIDs(full) != "[a x]" || dispatchTasks(full) != "[x a]" ||
		full.BranchesDone != 2 || full.ProgressMessage != "again" {
		t.Fatalf("after a partial write: tasks %s branches %s done %s dispatches %s, header %d %q",
			taskIDs(full), branchIDs(full), doneIDs(full), dispatchTasks(full), full.BranchesDone, full.ProgressMessage)
	}
	// A copy read before that write is stale, whatever it loaded.
	stale, err := s.LoadJob(ctx, "fan", "b")
	must(t, err)
	full.Tasks["b"].State = store.TaskRunning
	must(t, s.UpdateJob(ctx, full, store.Effects{}))
	delete(stale.Tasks, "b")
	if err := s.UpdateJob(ctx, stale, store.Effects{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale partial write: %v", err)
	}

	// A full copy that drops what it loaded deletes it.
	full.BranchResults = nil
	full.Tasks = nil
	full.Status = "finished"
	must(t, s.UpdateJob(ctx, full, store.Effects{}))
	full, err = s.GetJob(ctx, "fan")
	must(t, err)
	if full.Tasks != nil || full.BranchResults != nil || doneIDs(full) != "[a x]" || dispatchTasks(full) != "[x a]" {
		t.Fatalf("after clearing: tasks %v branches %v done %s dispatches %s", full.Tasks, full.BranchResults, doneIDs(full), dispatchTasks(full))
	}
}

// testSmallJobReadWhole: LoadJob reads a job of at most store.SmallJob
// part records whole, as GetJob does.
func testSmallJobReadWhole(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	j := newJob("one")
	j.Tasks = map[string]*store.TaskRun{"a": {ID: "a", Spec: store.TaskSpec{Type: "work"}, Attempt: 1, State: store.TaskQueued}}
	j.DoneTasks = map[string]string{"x": "success"}
	j.Dispatches = []store.Dispatch{{TaskID: "a", Type: "work", Attempt: 1}}
	must(t, s.CreateJob(ctx, j, store.Effects{}))
	got, err := s.LoadJob(ctx, "one", "nope")
	must(t, err)
	if !got.Loaded.All || taskIDs(got) != "[a]" || doneIDs(got) != "[x]" || dispatchTasks(got) != "[a]" {
		t.Fatalf("small job: all %v tasks %s done %s dispatches %s", got.Loaded.All, taskIDs(got), doneIDs(got), dispatchTasks(got))
	}
	// A whole copy writes like one from GetJob: dropping the task deletes it.
	got.Tasks = nil
	got.DoneTasks["a"] = "success"
	must(t, s.UpdateJob(ctx, got, store.Effects{}))
	full, err := s.GetJob(ctx, "one")
	must(t, err)
	if full.Tasks != nil || doneIDs(full) != "[a x]" || dispatchTasks(full) != "[a]" {
		t.Fatalf("after a write from a small job's copy: tasks %v done %s dispatches %s", full.Tasks, doneIDs(full), dispatchTasks(full))
	}
}

// testPartsExpire: a terminal job's parts go with it at the end of its
// retention.
func testPartsExpire(t *testing.T, f Factory) {
	s, ctx := f(t, Options{Retention: 300 * time.Millisecond}), ctxFor(t)
	j := newJob("old")
	j.Tasks = map[string]*store.TaskRun{"a": {ID: "a", Attempt: 1, State: store.TaskQueued}}
	j.Dispatches = []store.Dispatch{{TaskID: "a"}}
	must(t, s.CreateJob(ctx, j, store.Effects{}))
	j.Status = "failed"
	j.DoneTasks = map[string]string{"a": "failure"}
	must(t, s.UpdateJob(ctx, j, store.Effects{}))
	time.Sleep(600 * time.Millisecond)
	if _, err := s.LoadJob(ctx, "old", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired job: %v", err)
	}
	// An id used again starts with no parts of the old job.
	must(t, s.CreateJob(ctx, newJob("old"), store.Effects{}))
	again, err := s.GetJob(ctx, "old")
	must(t, err)
	if again.Tasks != nil || again.DoneTasks != nil || again.Dispatches != nil {
		t.Fatalf("a new job under an expired id has old parts: %s %s %s", taskIDs(again), doneIDs(again), dispatchTasks(again))
	}
}

// testOnce: a write with Effects.Onces stores its key with it, and a write
// whose key is taken writes nothing (idempotent creation); with plain job
// ids and with ids in the key's tree (store.NewTreeIDFor, which a store
// with shards writes in one step with the key).
func testOnce(t *testing.T, f Factory) {
	key, ctx := "idem:c1:k", ctxFor(t)
	for _, ids := range [][2]string{{"first", "second"}, {store.NewTreeIDFor(key), store.NewTreeIDFor(key)}} {
		s := f(t, Options{})
		first, second := ids[0], ids[1]
		once := store.Once{Key: key, Value: first, TTL: time.Hour}
		must(t, s.CreateJob(ctx, newJob(first), store.Effects{Onces: []store.Once{once}, Ready: []string{first}}))
		if v, err := s.GetValue(ctx, once.Key); err != nil || v != first {
			t.Fatalf("once key: %q %v, want %s", v, err, first)
		}
		again := store.Once{Key: once.Key, Value: second, TTL: time.Hour}
		err := s.CreateJob(ctx, newJob(second), store.Effects{Onces: []store.Once{again}, Events: [][]byte{[]byte("lost")}})
		if !errors.Is(err, store.ErrOnceTaken) {
			t.Fatalf("a create with a taken key: %v", err)
		}
		if _, err := s.GetJob(ctx, second); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused create wrote its job: %v", err)
		}
		if n, _ := s.EventCount(ctx); n != 0 {
			t.Fatalf("the refused create wrote %d events", n)
		}
		if v, _ := s.GetValue(ctx, once.Key); v != first {
			t.Fatalf("once key after a refused create: %q, want %s", v, first)
		}
	}
}

// testWideWrite: one write of a wide fan-out (more records than a Redis
// command of the commit script carries at once) puts, queues and later
// deletes every record, and counts every queued task in its worker's load.
func testWideWrite(t *testing.T, f Factory) {
	s, ctx := f(t, Options{}), ctxFor(t)
	const n = 700
	j := newJob("wd-job")
	j.Tasks = map[string]*store.TaskRun{}
	var fx store.Effects
	at := time.Now()
	for i := range n {
		id := fmt.Sprintf("wd-%03d", i)
		worker := []string{"w1", "w2", ""}[i%3]
		run := store.TaskRun{ID: id, Spec: store.TaskSpec{Type: "work"}, Branch: true, Attempt: 1, State: store.TaskQueued}
		j.Tasks[id] = &run
		j.Dispatches = append(j.Dispatches, store.Dispatch{TaskID: id, Type: "work", Attempt: 1})
		q := queued(j.ID, id, worker, "work", 0, at.Add(time.Duration(i)*time.Millisecond))
		fx.Enqueue = append(fx.Enqueue, q)
	}
	must(t, s.CreateJob(ctx, j, fx))

	full, err := s.GetJob(ctx, j.ID)
	must(t, err)
	if len(full.Tasks) != n || len(full.Dispatches) != n || full.Dispatches[n-1].TaskID != fmt.Sprintf("wd-%03d", n-1) {
		t.Fatalf("read back %d tasks and %d dispatches (last %+v), want %d each", len(full.Tasks), len(full.Dispatches), full.Dispatches[len(full.Dispatches)-1], n)
	}
	lens, err := s.QueueLengths(ctx)
	must(t, err)
	perQueue := n / 3 // 700 = 234 + 233 + 233
	if lens[store.WorkerQueue("w1")] != perQueue+1 || lens[store.WorkerQueue("w2")] != perQueue || lens[store.PendingQueue("work")] != perQueue {
		t.Fatalf("queue lengths %v", lens)
	}
	head, err := s.PeekTasks(ctx, store.WorkerQueue("w1"), 2)
	must(t, err)
	if len(head) != 2 || head[0].Run.ID != "wd-000" || head[1].Run.ID != "wd-003" {
		t.Fatalf("head of w1's queue: %+v", head)
	}
	fig, err := s.WorkerFigures(ctx, "w1", "w2")
	must(t, err)
	if fig.Loads["w1"] != perQueue+1 || fig.Loads["w2"] != perQueue {
		t.Fatalf("loads %v", fig.Loads)
	}

	// Every task done in one write: records deleted, done recorded.
	full.DoneTasks = map[string]string{}
	for id := range full.Tasks {
		full.DoneTasks[id] = "success"
	}
	full.Tasks = map[string]*store.TaskRun{}
	must(t, s.UpdateJob(ctx, full, store.Effects{}))
	full, err = s.GetJob(ctx, j.ID)
	must(t, err)
	if len(full.Tasks) != 0 || len(full.DoneTasks) != n || full.DoneTasks["wd-699"] != "success" {
		t.Fatalf("after the wide update: %d tasks, %d done", len(full.Tasks), len(full.DoneTasks))
	}
}
