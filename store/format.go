package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FormatVersion is the format of the job records a store writes (headers
// and task records carry it as format_version). Format 3 is format 2 but
// that a store may keep a job's initial_data, which never changes, apart
// from its header, written once (the header's initial_data is then null);
// format 2 names every field of a task's spec in snake case with durations
// in milliseconds; format 1 (records without a version, written before)
// stored the spec with Go field names and durations in nanoseconds.
// Records of earlier formats are read and written back in this one; a
// record of a later format than this one is refused with ErrFormat, so
// that an older orchestrator never rewrites what a newer one wrote.
const FormatVersion = 3

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

// TaskSpec is the work a task asks of a worker, as stored (the engine
// makes it from a blueprint.Task). Its JSON is format 2's: snake case,
// durations in whole milliseconds.
type TaskSpec struct {
	Type            string
	Params          map[string]any
	Priority        float64
	MaxCost         float64 // zero: no limit
	Timeout         time.Duration
	DispatchTimeout time.Duration
	ResultTimeout   time.Duration
	Requirements    map[string]any
}

// specRecord is TaskSpec's encoding in format 2.
type specRecord struct {
	Type              string         `json:"type"`
	Params            map[string]any `json:"params,omitempty"`
	Priority          float64        `json:"priority,omitempty"`
	MaxCost           float64        `json:"max_cost,omitempty"`
	TimeoutMS         int64          `json:"timeout_ms,omitempty"`
	DispatchTimeoutMS int64          `json:"dispatch_timeout_ms,omitempty"`
	ResultTimeoutMS   int64          `json:"result_timeout_ms,omitempty"`
	Requirements      map[string]any `json:"requirements,omitempty"`
}

// specV1 is TaskSpec without its methods, which encodes it as format 1
// did: Go field names (those of blueprint.Task) and nanoseconds.
type specV1 TaskSpec

// MarshalJSON writes the spec in format 2.
func (s TaskSpec) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.record())
}

func (s TaskSpec) record() specRecord {
	return specRecord{
		Type: s.Type, Params: s.Params, Priority: s.Priority, MaxCost: s.MaxCost,
		TimeoutMS: millis(s.Timeout), DispatchTimeoutMS: millis(s.DispatchTimeout), ResultTimeoutMS: millis(s.ResultTimeout),
		Requirements: s.Requirements,
	}
}

// UnmarshalJSON reads a spec of format 2.
func (s *TaskSpec) UnmarshalJSON(b []byte) error {
	var r specRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	*s = TaskSpec{
		Type: r.Type, Params: r.Params, Priority: r.Priority, MaxCost: r.MaxCost,
		Timeout: ms(r.TimeoutMS), DispatchTimeout: ms(r.DispatchTimeoutMS), ResultTimeout: ms(r.ResultTimeoutMS),
		Requirements: r.Requirements,
	}
	return nil
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

// taskRecord is a task record as FormatVersion writes it. Spec is repeated
// after the embedded fields to keep the order of format 2's bytes: spec
// after params_metadata, then format_version. It is encoded as its record,
// not through its MarshalJSON, whose output encoding/json would scan and
// compact once more.
type taskRecord struct {
	taskRunFields
	Spec   specRecord `json:"spec"`
	Format int        `json:"format_version"`
}

func (r TaskRun) record() taskRecord {
	return taskRecord{taskRunFields(r), r.Spec.record(), FormatVersion}
}

// MarshalJSON writes a task record in FormatVersion.
func (r TaskRun) MarshalJSON() ([]byte, error) {
	return json.Marshal(r.record())
}

// MarshalJSON writes a queued task, its run as a task record, in one pass.
// Call it directly: json.Marshal would scan and compact its output once
// more, as it would the run's inside a QueuedTask without this method.
func (q QueuedTask) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		JobID  string     `json:"job_id"`
		Worker string     `json:"worker,omitempty"`
		Run    taskRecord `json:"run"`
		Score  float64    `json:"score"`
	}{q.JobID, q.Worker, q.Run.record(), q.Score})
}

// UnmarshalJSON reads a task record of format 1, 2 or 3.
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
		r.Spec = TaskSpec{}
		return nil
	}
	if rec.Format < 2 {
		var old specV1
		if err := json.Unmarshal(rec.Spec, &old); err != nil {
			return fmt.Errorf("task %s: format 1 spec: %w", r.ID, err)
		}
		r.Spec = TaskSpec(old)
		return nil
	}
	if err := json.Unmarshal(rec.Spec, &r.Spec); err != nil {
		return fmt.Errorf("task %s: spec: %w", r.ID, err)
	}
	return nil
}
