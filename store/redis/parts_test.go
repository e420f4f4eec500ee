package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// A job written before parts were records of their own (its tasks,
// branch results, final statuses and dispatches inline in the document)
// is read whole, even by LoadJob, and its next write moves every part to
// records: a deployment upgraded with jobs in flight loses none of them.
func TestInlinePartsMoveToRecords(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	s := openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	old := store.Job{
		ID: "old", Blueprint: "bp", Status: protocol.StatusWaitingParallel, CurrentState: "fan",
		Client: store.Client{Name: "c"}, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Version: 3,
		Tasks: map[string]*store.TaskRun{
			"a": {ID: "a", Branch: true, Attempt: 1, State: store.TaskRunning, WorkerID: "w"},
			"b": {ID: "b", Branch: true, Attempt: 1, State: store.TaskQueued},
		},
		DoneTasks:  map[string]string{"c": "success"},
		Dispatches: []store.Dispatch{{TaskID: "a"}, {TaskID: "b"}, {TaskID: "c"}},
	}
	doc, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	rdb := rawClient(t, url)
	defer rdb.Close()
	key := "{" + prefix + "}:job:old"
	if err := rdb.HSet(ctx, key, "doc", string(doc), "v", "3").Err(); err != nil {
		t.Fatal(err)
	}

	part, err := s.LoadJob(ctx, "old", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !part.Loaded.All || len(part.Tasks) != 2 || part.DoneTasks["c"] != "success" || len(part.Dispatches) != 3 {
		t.Fatalf("an old job read by LoadJob: all %v, tasks %d, done %v, dispatches %d", part.Loaded.All, len(part.Tasks), part.DoneTasks, len(part.Dispatches))
	}
	delete(part.Tasks, "a")
	part.DoneTasks["a"] = "success"
	if err := s.UpdateJob(ctx, part, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	stored, err := rdb.HGet(ctx, key, "doc").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, inline := range []string{`"tasks"`, `"done_tasks"`, `"dispatches"`} {
		if strings.Contains(stored, inline) {
			t.Fatalf("the document still holds %s after a write: %s", inline, stored)
		}
	}
	whole, err := s.GetJob(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Tasks) != 1 || whole.Tasks["b"] == nil || len(whole.DoneTasks) != 2 || len(whole.Dispatches) != 3 {
		t.Fatalf("after the move: tasks %v, done %v, dispatches %d", whole.Tasks, whole.DoneTasks, len(whole.Dispatches))
	}
	// From now on the parts are read from records.
	if part, err := s.LoadJob(ctx, "old", "b"); err != nil || len(part.Tasks) != 1 || part.Tasks["b"] == nil || len(part.Dispatches) != 3 {
		t.Fatalf("a moved job read by LoadJob: %+v %v", part, err)
	}
}

// A job written in format 1 (a task's spec with Go field names and
// durations in nanoseconds) is read as written and saved in the current
// format; a job of a later format than this code reads is refused with an
// error naming both, and nothing is written over it.
func TestRecordFormats(t *testing.T) {
	t.Parallel()
	s, rdb, prefix, ctx := storeWithRaw(t)
	k := func(suffix string) string { return "{" + prefix + "}:job:" + suffix }

	header := `{"id":"v1","blueprint_name":"bp","status":"waiting_for_worker","current_state":"s","initial_data":{},"state_history":{},"progress":0,"client":{"name":"c"},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","transition_count":0}`
	task := `{"id":"t","spec":{"Type":"resize","Params":{"w":10},"Priority":0,"MaxCost":0,"Timeout":90000000000,"DispatchTimeout":0,"ResultTimeout":0,"Requirements":null},"strategy":"default","attempt":1,"state":"queued","queued_at":"2026-01-01T00:00:00Z"}`
	if err := rdb.HSet(ctx, k("v1"), "doc", header, "v", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, k("v1:tasks"), "t", task).Err(); err != nil {
		t.Fatal(err)
	}
	j, err := s.LoadJob(ctx, "v1", "t")
	if err != nil {
		t.Fatal(err)
	}
	if run := j.Tasks["t"]; run == nil || run.Spec.Type != "resize" || run.Spec.Timeout != 90*time.Second || run.Spec.Params["w"] != 10.0 {
		t.Fatalf("format 1 task read as %+v", j.Tasks["t"])
	}
	j.ProgressMessage = "moved on"
	if err := s.UpdateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	stored, _ := rdb.HGet(ctx, k("v1:tasks"), "t").Result()
	doc, _ := rdb.HGet(ctx, k("v1"), "doc").Result()
	if !strings.Contains(stored, `"timeout_ms":90000`) || strings.Contains(stored, `"Timeout"`) || !strings.Contains(doc, `"format_version":3`) {
		t.Fatalf("written back as\n%s\n%s", stored, doc)
	}

	future := strings.Replace(header, `"id":"v1"`, `"id":"v9","format_version":9`, 1)
	if err := rdb.HSet(ctx, k("v9"), "doc", future, "v", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadJob(ctx, "v9"); !errors.Is(err, store.ErrFormat) || !strings.Contains(err.Error(), "format 9") {
		t.Fatalf("a job of format 9: %v", err)
	}
}

// A job's initial data is written once, to the field "in": when the job
// is created, or by the first write of a job read from format 2 (whose
// header held it). Later writes neither encode nor send it, and every read
// (LoadJob, GetJob, ListJobs) returns it.
func TestInitialDataWrittenOnce(t *testing.T) {
	t.Parallel()
	s, rdb, prefix, ctx := storeWithRaw(t)
	k := func(id string) string { return "{" + prefix + "}:job:" + id }
	hasData := func(j *store.Job, want string) bool { return j != nil && j.InitialData["prompt"] == want }

	// A job of format 2, its initial data in the header.
	header := `{"id":"f2","blueprint_name":"bp","status":"pending","current_state":"s","initial_data":{"prompt":"p"},"state_history":{},"progress":0,"client":{"name":"c"},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","transition_count":0,"format_version":2}`
	if err := rdb.HSet(ctx, k("f2"), "doc", header, "v", "1").Err(); err != nil {
		t.Fatal(err)
	}
	j, err := s.LoadJob(ctx, "f2")
	if err != nil || !hasData(j, "p") {
		t.Fatalf("a format 2 job read as %+v, %v", j, err)
	}
	j.ProgressMessage = "moved on"
	if err := s.UpdateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	fields, _ := rdb.HGetAll(ctx, k("f2")).Result()
	if fields["in"] != `{"prompt":"p"}` || !strings.Contains(fields["doc"], `"initial_data":null`) || !strings.Contains(fields["doc"], `"format_version":3`) {
		t.Fatalf("after its first write: in %q, doc %s", fields["in"], fields["doc"])
	}
	if again, err := s.GetJob(ctx, "f2"); err != nil || !hasData(again, "p") {
		t.Fatalf("read back as %+v, %v", again, err)
	}

	// From now on a write leaves the field alone: a value put there by
	// hand survives the next write from the same copy.
	if err := rdb.HSet(ctx, k("f2"), "in", `{"prompt":"untouched"}`).Err(); err != nil {
		t.Fatal(err)
	}
	j.ProgressMessage = "and on"
	if err := s.UpdateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	if again, err := s.LoadJob(ctx, "f2"); err != nil || !hasData(again, "untouched") || again.ProgressMessage != "and on" {
		t.Fatalf("the second write rewrote the initial data: %+v, %v", again, err)
	}

	// A job created now has its data apart from the start.
	now := time.Now().UTC()
	created := &store.Job{ID: "new", Blueprint: "bp", Status: protocol.StatusPending, CurrentState: "s",
		InitialData: map[string]any{"prompt": "fresh"}, Client: store.Client{Name: "c"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateJob(ctx, created, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	if in, _ := rdb.HGet(ctx, k("new"), "in").Result(); in != `{"prompt":"fresh"}` {
		t.Fatalf("created with in %q", in)
	}
	page, _, err := s.ListJobs(ctx, store.JobFilter{Client: "c"})
	if err != nil || len(page) != 1 || !hasData(page[0], "fresh") { // the job stored by hand is in no index
		t.Fatalf("listed: %v, %v", page, err)
	}
}

// A timer's key says all of it but its due time, the score: timers:data
// keeps a document only for a timer whose key cannot (a "|" in its ref),
// whether the timer comes with a commit or alone, and both kinds fire
// whole. Timers left with documents by earlier versions still fire; a
// cancel removes only the documents the store writes now, and a Store
// that starts drops the others.
func TestTimerDocumentsOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	s, rdb, prefix, ctx := storeWithRaw(t)
	data := "{" + prefix + "}:timers:data"

	past := time.Now().Add(-time.Second)
	plain := store.Timer{JobID: "j", Kind: store.TimerExecution, Ref: "task-1", Seq: 1, At: past}
	odd := store.Timer{JobID: "j", Kind: store.TimerStep, Ref: "x|y", Seq: 2, At: past}
	alone := store.Timer{JobID: "k", Kind: store.TimerRetry, Ref: "task-2", Seq: 3, At: past}
	job := &store.Job{ID: "j", Blueprint: "bp", Status: protocol.StatusRunning, Client: store.Client{Name: "c"},
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := s.CreateJob(ctx, job, store.Effects{Timers: []store.Timer{plain, odd}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTimers(ctx, alone); err != nil {
		t.Fatal(err)
	}
	docs, err := rdb.HKeys(ctx, data).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0] != odd.Key() {
		t.Fatalf("timers:data holds %q, want only %q", docs, odd.Key())
	}
	// A timer an earlier version wrote with its document.
	legacy := store.Timer{JobID: "l", Kind: store.TimerDispatch, Ref: "task-3", Seq: 1, At: past}
	doc, _ := json.Marshal(legacy)
	if err := rdb.ZAdd(ctx, "{"+prefix+"}:timers", goredis.Z{Score: float64(past.UnixMicro()), Member: legacy.Key()}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, data, legacy.Key(), string(doc)).Err(); err != nil {
		t.Fatal(err)
	}

	due, err := s.DueTimers(ctx, time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Timer{}
	for _, d := range due {
		got[d.Key()] = d
	}
	for _, want := range []store.Timer{plain, odd, alone, legacy} {
		d, ok := got[want.Key()]
		if !ok || d.JobID != want.JobID || d.Kind != want.Kind || d.Ref != want.Ref || d.Seq != want.Seq ||
			d.At.Sub(want.At).Abs() > time.Millisecond {
			t.Fatalf("due timer %q: %+v (found %v), want %+v", want.Key(), d, ok, want)
		}
	}
	job.Version = 1
	if err := s.UpdateJob(ctx, job, store.Effects{Cancel: []string{odd.Key(), legacy.Key()}}); err != nil {
		t.Fatal(err)
	}
	if docs, err := rdb.HKeys(ctx, data).Result(); err != nil || len(docs) != 1 || docs[0] != legacy.Key() {
		t.Fatalf("timers:data holds %q after the cancels (%v), want only the earlier version's %q", docs, err, legacy.Key())
	}
	// A timer of an earlier version still waiting keeps firing without
	// its document; a Store that starts drops both kinds.
	waiting := store.Timer{JobID: "l", Kind: store.TimerRetry, Ref: "task-4", Seq: 1, At: past}
	if err := rdb.ZAdd(ctx, "{"+prefix+"}:timers", goredis.Z{Score: float64(past.UnixMicro()), Member: waiting.Key()}).Err(); err != nil {
		t.Fatal(err)
	}
	wdoc, _ := json.Marshal(waiting)
	if err := rdb.HSet(ctx, data, waiting.Key(), string(wdoc), odd.Key(), "kept").Err(); err != nil {
		t.Fatal(err)
	}
	openStore(t, redisstore.Options{URL: testenv.URL(t, testenv.RedisVar), Prefix: prefix})
	deadline := time.Now().Add(10 * time.Second)
	for {
		docs, err := rdb.HKeys(ctx, data).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) == 1 && docs[0] == odd.Key() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timers:data holds %q after a Store started, want only %q (whose key cannot say what it is)", docs, odd.Key())
		}
		time.Sleep(20 * time.Millisecond)
	}
	due, err = s.DueTimers(ctx, time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Key() != waiting.Key() || due[0].Kind != store.TimerRetry || due[0].Ref != "task-4" {
		t.Fatalf("due after the drop: %+v, want only %q", due, waiting.Key())
	}
}

// storeWithRaw opens a store on a fresh prefix, with a plain client of the
// same Redis to look at its keys, and a context for the test.
func storeWithRaw(t *testing.T) (*redisstore.Store, *goredis.Client, string, context.Context) {
	t.Helper()
	url := testenv.URL(t, testenv.RedisVar)
	prefix := newPrefix(t, url)
	s := openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	rdb := rawClient(t, url)
	t.Cleanup(func() { rdb.Close() })
	return s, rdb, prefix, ctx
}
