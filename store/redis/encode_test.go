package redis

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/jsonappend/jsonappendtest"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// checkHeader fails unless appendHeader writes what json.Marshal writes
// for the header of j, or both fail.
func checkHeader(t *testing.T, j *store.Job) {
	t.Helper()
	h := j.Header()
	want, wantErr := json.Marshal(h)
	got, err := appendHeader(nil, h)
	switch {
	case wantErr != nil && err != nil:
	case wantErr != nil || err != nil:
		t.Fatalf("json.Marshal error %v, appendHeader error %v", wantErr, err)
	case !bytes.Equal(got, want):
		t.Fatalf("appendHeader wrote\n%s\njson.Marshal writes\n%s", got, want)
	}
}

func TestAppendHeader(t *testing.T) {
	// Every field set: a field added to store.Job that appendHeader does
	// not write fails here.
	var full store.Job
	jsonappendtest.Fill(t, &full)
	checkHeader(t, &full)
	// The golden job of store's format test, as stored before.
	golden, err := os.ReadFile("../testdata/format2.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var stored store.Job
	if err := json.Unmarshal(bytes.SplitN(golden, []byte("\n"), 2)[0], &stored); err != nil {
		t.Fatal(err)
	}
	checkHeader(t, &stored)

	now := time.Date(2026, 12, 5, 23, 49, 4, 52520169, time.UTC)
	oneTask := func() *store.Job {
		return &store.Job{ID: "c4d6ec4b", Blueprint: "one-task", Status: protocol.StatusFinished, CurrentState: "finished",
			StateHistory: map[string]any{}, Progress: 1, Result: map[string]any{}, Client: store.Client{Name: "bench"},
			CreatedAt: now, UpdatedAt: now, FinishedAt: &now,
			LastResult:      &store.Result{TaskID: "task-1", Type: "noop", WorkerID: "w1", Status: "success"},
			TransitionCount: 1, Format: store.FormatVersion, Version: 2}
	}
	checkHeader(t, oneTask())
	checkHeader(t, &store.Job{}) // every field zero: nulls and omissions

	cases := map[string]func(j *store.Job){
		"escapes":       func(j *store.Job) { j.ID = "a\"b\\c\b\f\n\r\t\x00\x1f\x7f<>&" },
		"invalid UTF-8": func(j *store.Job) { j.ErrorMessage = "a\xffb\xc3" },
		"separators":    func(j *store.Job) { j.ProgressMessage = "a\u2028b\u2029c\u00e9\U0001F600" },
		"empty maps": func(j *store.Job) {
			j.Policy, j.Costs, j.Routes, j.TraceContext = map[string]any{}, map[string]float64{}, map[string]string{}, map[string]string{}
			j.Client.Params, j.DataMetadata = map[string]any{}, map[string]protocol.FileMetadata{}
		},
		"nil history":     func(j *store.Job) { j.StateHistory = nil },
		"nil result":      func(j *store.Job) { j.Result = nil },
		"sorted maps":     func(j *store.Job) { j.Routes = map[string]string{"z": "1", "a": "2", "M": "3", "é": "4", "": "5"} },
		"costs":           func(j *store.Job) { j.Costs = map[string]float64{"usd": 0.1, "eur": 1e21, "gbp": 1e-7, "yen": -0} },
		"nil decisions":   func(j *store.Job) { j.Approval = &store.Approval{Message: "ok?"} },
		"empty decisions": func(j *store.Job) { j.Approval = &store.Approval{Decisions: []string{}} },
		"zoned time":      func(j *store.Job) { j.CreatedAt = now.In(time.FixedZone("x", 5*3600+30*60)) },
		"zero time":       func(j *store.Job) { j.UpdatedAt = time.Time{} },
		"year 10000":      func(j *store.Job) { j.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"NaN progress":    func(j *store.Job) { j.Progress = math.NaN() },
		"infinite cost":   func(j *store.Job) { j.Costs = map[string]float64{"usd": math.Inf(1)} },
		"bad result":      func(j *store.Job) { j.Result = map[string]any{"f": func() {}} },
		"error result": func(j *store.Job) {
			j.LastResult.Error = &protocol.TaskError{Code: "C", Message: "m", Details: map[string]any{"k": "v"}}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			j := oneTask()
			change(j)
			checkHeader(t, j)
		})
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 5e-324,
		1e20, 1e21, 123456789.125, math.MaxFloat64, -math.MaxFloat64, 1.0 / 3} {
		j := oneTask()
		j.Progress = f
		checkHeader(t, j)
	}
}

func FuzzAppendHeader(f *testing.F) {
	f.Add("j1", "running <b>", "k", "v", 0.5, int64(3))
	f.Add("\xff\u2028", "\x00\"\\", "", "\u00e9", 1e-7, int64(-1))
	f.Add("", "", "z", "a", 1e21, int64(0))
	f.Fuzz(func(t *testing.T, id, msg, key, val string, progress float64, n int64) {
		j := &store.Job{ID: id, ProgressMessage: msg, Progress: progress, Version: n, RetryCount: int(n),
			Routes: map[string]string{key: val, val: key}, Costs: map[string]float64{key: progress},
			StateHistory: map[string]any{key: val}, CreatedAt: time.Unix(0, n).UTC()}
		checkHeader(t, j)
	})
}

func BenchmarkHeader(b *testing.B) {
	now := time.Now().UTC()
	j := &store.Job{ID: "c4d6ec4b-d6d3-4d39-8d41-37f2005ee02b", Blueprint: "one-task", Status: protocol.StatusFinished,
		CurrentState: "finished", StateHistory: map[string]any{}, Progress: 1, Result: map[string]any{},
		Client: store.Client{Name: "bench"}, CreatedAt: now, UpdatedAt: now, FinishedAt: &now,
		LastResult:      &store.Result{TaskID: "task-c46f37fe-8d65-42ca-a35d-a9ebec1499bf", Type: "noop", WorkerID: "bench-worker-1", Status: "success"},
		TransitionCount: 1, Format: store.FormatVersion, Version: 2}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(j.Header()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendHeader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendHeader(make([]byte, 0, 1024), j.Header()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
