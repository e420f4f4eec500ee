package store

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/jsonappend/jsonappendtest"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestTaskRecordFormat(t *testing.T) {
	t.Parallel()
	run := TaskRun{ID: "t1", Attempt: 2, State: TaskQueued, Spec: TaskSpec{
		Type: "resize", Params: map[string]any{"w": 10.0}, Priority: 3, MaxCost: 0.5,
		Timeout: 90 * time.Second, DispatchTimeout: time.Minute, ResultTimeout: time.Microsecond,
		Requirements: map[string]any{"gpu": true},
	}}
	b, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"format_version":3`, `"type":"resize"`, `"timeout_ms":90000`, `"dispatch_timeout_ms":60000`, `"result_timeout_ms":1`, `"max_cost":0.5`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("record lacks %s: %s", want, b)
		}
	}
	for _, goName := range []string{`"Type"`, `"Timeout"`, `"MaxCost"`, `"Params"`} {
		if strings.Contains(string(b), goName) {
			t.Errorf("record has the Go field name %s: %s", goName, b)
		}
	}
	var back TaskRun
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != "t1" || back.Attempt != 2 || back.Spec.Type != "resize" || back.Spec.Timeout != 90*time.Second ||
		back.Spec.DispatchTimeout != time.Minute || back.Spec.ResultTimeout != time.Millisecond || back.Spec.Params["w"] != 10.0 ||
		back.Spec.MaxCost != 0.5 || back.Spec.Priority != 3 || back.Spec.Requirements["gpu"] != true {
		t.Fatalf("round trip: %+v", back)
	}
}

// Records of format 1 (no version; the spec with Go names and nanoseconds)
// are read; records of a later format are refused, naming the versions.
func TestTaskRecordOtherFormats(t *testing.T) {
	t.Parallel()
	old := `{"id":"t1","spec":{"Type":"resize","Params":{"w":10},"Priority":0,"MaxCost":0.5,"Timeout":90000000000,"DispatchTimeout":0,"ResultTimeout":0,"Requirements":null},"strategy":"cheapest","attempt":1,"state":"queued","queued_at":"2026-01-01T00:00:00Z"}`
	var run TaskRun
	if err := json.Unmarshal([]byte(old), &run); err != nil {
		t.Fatal(err)
	}
	if run.Spec.Type != "resize" || run.Spec.Timeout != 90*time.Second || run.Spec.MaxCost != 0.5 || run.Strategy != "cheapest" {
		t.Fatalf("format 1: %+v", run)
	}
	newer := `{"id":"t1","spec":{"type":"x"},"format_version":4}`
	err := json.Unmarshal([]byte(newer), &run)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format 4") || !strings.Contains(err.Error(), "up to 3") {
		t.Fatalf("format 4: %v", err)
	}
}

// testdata/format2.jsonl holds records written by the orchestrator before
// store had types of its own (at 7777cf4, when the public blueprint types
// were stored): a job header with its parts inline, a task record, a queued
// task, a result and a decision, first with every field set, then with the
// fewest. Format 3 writes what format 2 did: each decodes and encodes back
// to the same bytes, but for the task records' format_version.
func TestFormat2Golden(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/format2.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var (
		job      Job
		run      TaskRun
		queued   QueuedTask
		result   Result
		decision Decision
	)
	// The same again with the fewest fields set, for what is left out.
	records := []any{&job, &run, &queued, &result, &decision, &Job{}, &TaskRun{}, &QueuedTask{}, &Result{}, &Decision{}}
	if len(lines) != len(records) {
		t.Fatalf("%d golden records, want %d", len(lines), len(records))
	}
	for i, v := range records {
		if err := json.Unmarshal([]byte(lines[i]), v); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		// A task record is written in format 3, whose task records are
		// format 2's.
		want := strings.ReplaceAll(lines[i], `"format_version":2}`, `"format_version":3}`)
		if string(b) != want {
			t.Errorf("record %d (%T) changed:\nstored  %s\nwritten %s", i, v, want, b)
		}
		// The stores call a record's MarshalJSON directly, skipping the
		// compaction json.Marshal does: it must write the same bytes.
		if m, ok := v.(json.Marshaler); ok {
			if direct, err := m.MarshalJSON(); err != nil || string(direct) != want {
				t.Errorf("record %d (%T) MarshalJSON wrote %s (%v), want %s", i, v, direct, err, want)
			}
		}
	}
	// Every field of store's own types is in the golden records, so none
	// can drop out of the bytes unnoticed.
	for _, v := range []any{job.Client, *job.LastResult, job.BranchResults["t0"], run.Spec, queued.Run.Spec} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%T.%s is not in the golden records", v, rv.Type().Field(i).Name)
			}
		}
	}
	want := TaskSpec{Type: "resize", Params: map[string]any{"src": "s3://b/k", "w": 10.0}, Priority: 3, MaxCost: 0.5,
		Timeout: 90 * time.Second, DispatchTimeout: time.Minute, ResultTimeout: 1500 * time.Millisecond,
		Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 4.0}}}
	if !reflect.DeepEqual(run.Spec, want) || !reflect.DeepEqual(job.Tasks["t1"].Spec, want) {
		t.Errorf("spec read as %+v, want %+v", run.Spec, want)
	}
	if !reflect.DeepEqual(job.Client, Client{Name: "alice", Plan: "vip", Params: map[string]any{"tier": 2.0}}) ||
		run.Strategy != "cheapest" || run.Decision.Strategy != "cheapest" || job.LastResult.Error.Code != "C" {
		t.Errorf("read %+v / %+v", job.Client, run)
	}
}

// taskRecord is what a task record stands for: the struct whose
// json.Marshal TaskRun.AppendJSON writes by hand. The spec is repeated
// after the embedded fields, where format 2 has it.
type taskRecord struct {
	taskRunFields
	Spec   specRecord `json:"spec"`
	Format int        `json:"format_version"`
}

// queuedRecord is what a queued task stands for.
type queuedRecord struct {
	JobID  string     `json:"job_id"`
	Worker string     `json:"worker,omitempty"`
	Run    taskRecord `json:"run"`
	Score  float64    `json:"score"`
}

func record(r TaskRun) taskRecord {
	return taskRecord{taskRunFields(r), r.Spec.record(), FormatVersion}
}

// appendsTo checks that enc appends want to what a buffer holds, and
// leaves that alone: the Redis store encodes a commit's records end to end
// into one buffer.
func appendsTo(t *testing.T, enc func([]byte) ([]byte, error), want []byte) {
	t.Helper()
	got, err := enc([]byte(`{"before":1}`))
	if err != nil || string(got) != `{"before":1}`+string(want) {
		t.Fatalf("appended to a buffer: wrote %s (%v), want the buffer and %s", got, err, want)
	}
}

// The hand-written encoders write what json.Marshal writes for the
// structs they stand for, with every field set and with few.
func TestTaskRecordEncoding(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, q QueuedTask) {
		t.Helper()
		want, wantErr := json.Marshal(queuedRecord{q.JobID, q.Worker, record(q.Run), q.Score})
		got, err := q.MarshalJSON()
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("queued task: wrote %s (%v), json.Marshal writes %s (%v)", got, err, want, wantErr)
		}
		if wantErr == nil {
			appendsTo(t, q.AppendJSON, want)
		}
		want, wantErr = json.Marshal(record(q.Run))
		got, err = q.Run.MarshalJSON()
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("task record: wrote %s (%v), json.Marshal writes %s (%v)", got, err, want, wantErr)
		}
		if wantErr == nil {
			appendsTo(t, q.Run.AppendJSON, want)
		}
	}
	var full QueuedTask
	jsonappendtest.Fill(t, &full)
	check(t, full)
	check(t, QueuedTask{})
	now := time.Date(2026, 12, 5, 23, 49, 4, 52520169, time.UTC)
	for name, change := range map[string]func(q *QueuedTask){
		"fresh":        func(q *QueuedTask) {},
		"sub-ms":       func(q *QueuedTask) { q.Run.Spec.Timeout, q.Run.Spec.ResultTimeout = time.Microsecond, -time.Second },
		"no worker id": func(q *QueuedTask) { q.Run.Decision = &Decision{Strategy: "default", Reason: "<only>"} },
		"empty lists": func(q *QueuedTask) {
			q.Run.Excluded, q.Run.Blame, q.Run.TraceContext = []string{}, []string{}, map[string]string{}
			q.Run.ParamsMetadata, q.Run.Spec.Requirements = map[string]protocol.FileMetadata{}, map[string]any{}
		},
		"NaN score":  func(q *QueuedTask) { q.Score = math.NaN() },
		"bad param":  func(q *QueuedTask) { q.Run.Spec.Params = map[string]any{"c": make(chan int)} },
		"year 10000": func(q *QueuedTask) { q.Run.QueuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		t.Run(name, func(t *testing.T) {
			q := QueuedTask{JobID: "j1", Score: 1.5e-9, Run: TaskRun{ID: "t1", Strategy: "default", Attempt: 1, State: TaskQueued,
				QueuedAt: now, Spec: TaskSpec{Type: "noop", Params: map[string]any{}, Priority: -2}}}
			change(&q)
			check(t, q)
		})
	}
}

// The records a commit writes beside task records are json.Marshal's
// bytes too.
func TestPartRecordEncoding(t *testing.T) {
	t.Parallel()
	var d Dispatch
	var r Result
	jsonappendtest.Fill(t, &d)
	jsonappendtest.Fill(t, &r)
	for _, v := range []any{&d, &Dispatch{}, &r, &Result{}, &Result{Data: map[string]any{}, Error: &protocol.TaskError{}}} {
		want, wantErr := json.Marshal(v)
		got, err := v.(interface{ AppendJSON([]byte) ([]byte, error) }).AppendJSON(nil)
		if err != nil || wantErr != nil || string(got) != string(want) {
			t.Errorf("%T: wrote %s (%v), json.Marshal writes %s (%v)", v, got, err, want, wantErr)
		}
	}
}

func BenchmarkTaskRecord(b *testing.B) {
	now := time.Now()
	r := TaskRun{ID: "task-c46f37fe-8d65-42ca-a35d-a9ebec1499bf", Strategy: "default", Attempt: 1, State: TaskRunning,
		WorkerID: "bench-worker-1", QueuedAt: now, PickedUpAt: &now,
		Decision: &Decision{WorkerID: "bench-worker-1", Strategy: "default", Candidates: 1, Reason: "polled"},
		Spec:     TaskSpec{Type: "noop", Params: map[string]any{}}}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(record(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
