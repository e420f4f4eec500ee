package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
)

func TestTaskRecordFormat(t *testing.T) {
	t.Parallel()
	run := TaskRun{ID: "t1", Attempt: 2, State: TaskQueued, Spec: blueprint.Task{
		Type: "resize", Params: map[string]any{"w": 10.0}, Priority: 3, MaxCost: 0.5,
		Timeout: 90 * time.Second, DispatchTimeout: time.Minute, ResultTimeout: time.Microsecond,
		Requirements: map[string]any{"gpu": true},
	}}
	b, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"format_version":2`, `"type":"resize"`, `"timeout_ms":90000`, `"dispatch_timeout_ms":60000`, `"result_timeout_ms":1`, `"max_cost":0.5`} {
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
	newer := `{"id":"t1","spec":{"type":"x"},"format_version":3}`
	err := json.Unmarshal([]byte(newer), &run)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format 3") || !strings.Contains(err.Error(), "up to 2") {
		t.Fatalf("format 3: %v", err)
	}
}
