package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/jsonappend"
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

// taskRunFields is TaskRun without its methods, for decoding it.
type taskRunFields TaskRun

// MarshalJSON writes a task record in FormatVersion.
func (r TaskRun) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 512))
}

// MarshalJSON writes a queued task, its run as a task record.
func (q QueuedTask) MarshalJSON() ([]byte, error) {
	return q.AppendJSON(make([]byte, 0, 640))
}

// AppendJSON appends what MarshalJSON returns to b.
func (q QueuedTask) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"job_id":`...)
	b = jsonappend.String(b, q.JobID)
	if q.Worker != "" {
		b = jsonappend.String(append(b, `,"worker":`...), q.Worker)
	}
	b, err := q.Run.AppendJSON(append(b, `,"run":`...))
	if err != nil {
		return nil, err
	}
	if b, err = jsonappend.Float(append(b, `,"score":`...), q.Score); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// AppendJSON appends the task record: the bytes json.Marshal writes for
// the struct it stands for (taskRecord in format_test.go, which
// TestTaskRecordEncoding compares it with), without reflection. Every
// commit of a task writes its record: encoding/json took a fortieth of a
// one-task job's CPU on them. The order is format 2's: TaskRun's fields,
// then the spec, then format_version.
func (r *TaskRun) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = jsonappend.String(append(b, `{"id":`...), r.ID)
	b = jsonappend.String(append(b, `,"strategy":`...), r.Strategy)
	if r.Branch {
		b = append(b, `,"branch":true`...)
	}
	b = strconv.AppendInt(append(b, `,"attempt":`...), int64(r.Attempt), 10)
	b = jsonappend.String(append(b, `,"state":`...), string(r.State))
	b = jsonappend.OptString(b, `,"worker_id":`, r.WorkerID)
	if len(r.Excluded) > 0 {
		b = jsonappend.Strings(append(b, `,"excluded":`...), r.Excluded)
	}
	if len(r.Blame) > 0 {
		b = jsonappend.Strings(append(b, `,"blame":`...), r.Blame)
	}
	if b, err = jsonappend.Time(append(b, `,"queued_at":`...), r.QueuedAt); err != nil {
		return nil, err
	}
	if r.PickedUpAt != nil {
		if b, err = jsonappend.Time(append(b, `,"picked_up_at":`...), *r.PickedUpAt); err != nil {
			return nil, err
		}
	}
	if r.Deadline != nil {
		if b, err = jsonappend.Time(append(b, `,"deadline":`...), *r.Deadline); err != nil {
			return nil, err
		}
	}
	if r.Decision != nil {
		b = append(r.Decision.appendFields(append(b, `,"decision":{`...)), '}')
	}
	if r.LastError != nil {
		if b, err = jsonappend.Value(append(b, `,"last_error":`...), r.LastError); err != nil {
			return nil, err
		}
	}
	if len(r.TraceContext) > 0 {
		b = jsonappend.StringMap(append(b, `,"trace_context":`...), r.TraceContext)
	}
	if len(r.ParamsMetadata) > 0 {
		if b, err = jsonappend.Value(append(b, `,"params_metadata":`...), r.ParamsMetadata); err != nil {
			return nil, err
		}
	}
	if b, err = r.Spec.appendRecord(append(b, `,"spec":`...)); err != nil {
		return nil, err
	}
	b = strconv.AppendInt(append(b, `,"format_version":`...), FormatVersion, 10)
	return append(b, '}'), nil
}

// appendFields appends the decision's members, as json.Marshal writes
// them: inside a task record's decision, or a dispatch record's own.
func (d *Decision) appendFields(b []byte) []byte {
	if d.WorkerID != "" {
		b = append(jsonappend.String(append(b, `"worker_id":`...), d.WorkerID), ',')
	}
	b = jsonappend.String(append(b, `"strategy":`...), d.Strategy)
	b = strconv.AppendInt(append(b, `,"candidates":`...), int64(d.Candidates), 10)
	return jsonappend.String(append(b, `,"reason":`...), d.Reason)
}

// AppendJSON appends the dispatch record as json.Marshal writes it,
// without reflection: a store writes one with every placement.
func (d *Dispatch) AppendJSON(b []byte) ([]byte, error) {
	b = d.Decision.appendFields(append(b, '{'))
	b = jsonappend.String(append(b, `,"task_id":`...), d.TaskID)
	b = jsonappend.String(append(b, `,"type":`...), d.Type)
	b = strconv.AppendInt(append(b, `,"attempt":`...), int64(d.Attempt), 10)
	b, err := jsonappend.Time(append(b, `,"at":`...), d.At)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// AppendJSON appends the result (a branch's, or a job's last) as
// json.Marshal writes it, without reflection.
func (r *Result) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = jsonappend.String(append(b, `{"task_id":`...), r.TaskID)
	b = jsonappend.OptString(b, `,"type":`, r.Type)
	b = jsonappend.OptString(b, `,"worker_id":`, r.WorkerID)
	b = jsonappend.String(append(b, `,"status":`...), r.Status)
	if len(r.Data) > 0 {
		if b, err = jsonappend.Value(append(b, `,"data":`...), r.Data); err != nil {
			return nil, err
		}
	}
	if r.Error != nil {
		if b, err = jsonappend.Value(append(b, `,"error":`...), r.Error); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendRecord appends the spec as json.Marshal writes its specRecord.
func (s *TaskSpec) appendRecord(b []byte) ([]byte, error) {
	var err error
	b = jsonappend.String(append(b, `{"type":`...), s.Type)
	if len(s.Params) > 0 {
		if b, err = jsonappend.Value(append(b, `,"params":`...), s.Params); err != nil {
			return nil, err
		}
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{`,"priority":`, s.Priority}, {`,"max_cost":`, s.MaxCost}} {
		if f.v != 0 {
			if b, err = jsonappend.Float(append(b, f.name...), f.v); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{{`,"timeout_ms":`, s.Timeout}, {`,"dispatch_timeout_ms":`, s.DispatchTimeout}, {`,"result_timeout_ms":`, s.ResultTimeout}} {
		if ms := millis(d.v); ms != 0 {
			b = strconv.AppendInt(append(b, d.name...), ms, 10)
		}
	}
	if len(s.Requirements) > 0 {
		if b, err = jsonappend.Value(append(b, `,"requirements":`...), s.Requirements); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
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
