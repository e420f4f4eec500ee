package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
)

// FormatVersion is the format of the job records a store writes (headers
// and task records carry it as format_version). Format 2 names every field
// of a task's spec in snake case with durations in milliseconds; format 1
// (records without a version, written before) stored the spec with Go
// field names and durations in nanoseconds. Records of format 1 are read
// and written back as format 2; a record of a later format than this one
// is refused with ErrFormat, so that an older orchestrator never rewrites
// what a newer one wrote.
const FormatVersion = 2

// ErrFormat is returned for a record written in a format this code does
// not read.
var ErrFormat = errors.New("unsupported record format")

// CheckFormat returns ErrFormat, naming both versions, for a record of a
// later format than FormatVersion.
func CheckFormat(v int) error {
	if v > FormatVersion {
		return fmt.Errorf("%w: written in format %d, this orchestrator reads up to %d: upgrade it", ErrFormat, v, FormatVersion)
	}
	return nil
}

// taskSpec is blueprint.Task as stored.
type taskSpec struct {
	Type              string         `json:"type"`
	Params            map[string]any `json:"params,omitempty"`
	Priority          float64        `json:"priority,omitempty"`
	MaxCost           float64        `json:"max_cost,omitempty"`
	TimeoutMS         int64          `json:"timeout_ms,omitempty"`
	DispatchTimeoutMS int64          `json:"dispatch_timeout_ms,omitempty"`
	ResultTimeoutMS   int64          `json:"result_timeout_ms,omitempty"`
	Requirements      map[string]any `json:"requirements,omitempty"`
}

func specOf(t blueprint.Task) taskSpec {
	return taskSpec{
		Type: t.Type, Params: t.Params, Priority: t.Priority, MaxCost: t.MaxCost,
		TimeoutMS: millis(t.Timeout), DispatchTimeoutMS: millis(t.DispatchTimeout), ResultTimeoutMS: millis(t.ResultTimeout),
		Requirements: t.Requirements,
	}
}

func (s taskSpec) task() blueprint.Task {
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	return blueprint.Task{
		Type: s.Type, Params: s.Params, Priority: s.Priority, MaxCost: s.MaxCost,
		Timeout: ms(s.TimeoutMS), DispatchTimeout: ms(s.DispatchTimeoutMS), ResultTimeout: ms(s.ResultTimeoutMS),
		Requirements: s.Requirements,
	}
}

// millis is d in whole milliseconds, at least 1 for a positive d, so that
// a set timeout never reads back as unset.
func millis(d time.Duration) int64 {
	if d > 0 && d < time.Millisecond {
		return 1
	}
	return d.Milliseconds()
}

// taskRunFields is TaskRun without its methods, for encoding it.
type taskRunFields TaskRun

// MarshalJSON writes a task record in FormatVersion.
func (r TaskRun) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		taskRunFields
		Spec   taskSpec `json:"spec"`
		Format int      `json:"format_version"`
	}{taskRunFields(r), specOf(r.Spec), FormatVersion})
}

// UnmarshalJSON reads a task record of format 1 or 2.
func (r *TaskRun) UnmarshalJSON(b []byte) error {
	var rec struct {
		*taskRunFields
		Spec   json.RawMessage `json:"spec"`
		Format int             `json:"format_version"`
	}
	rec.taskRunFields = (*taskRunFields)(r)
	if err := json.Unmarshal(b, &rec); err != nil {
		return err
	}
	if err := CheckFormat(rec.Format); err != nil {
		return fmt.Errorf("task %s: %w", r.ID, err)
	}
	if len(rec.Spec) == 0 || string(rec.Spec) == "null" {
		r.Spec = blueprint.Task{}
		return nil
	}
	if rec.Format < 2 {
		// Format 1: blueprint.Task's own encoding (Go names, nanoseconds).
		var t blueprint.Task
		if err := json.Unmarshal(rec.Spec, &t); err != nil {
			return fmt.Errorf("task %s: spec: %w", r.ID, err)
		}
		r.Spec = t
		return nil
	}
	var s taskSpec
	if err := json.Unmarshal(rec.Spec, &s); err != nil {
		return fmt.Errorf("task %s: spec: %w", r.ID, err)
	}
	r.Spec = s.task()
	return nil
}
