package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// Encoded is an event as a backend writes it: validated, with times in UTC
// to the microsecond, strings cleaned (see Event), and Detail and the job
// summary as JSON. Backends get it from Encode.
type Encoded struct {
	ID        string // canonical lower-case UUID
	Time      time.Time
	Type      string
	JobID     string
	Blueprint string
	Client    string
	State     string
	PrevState string
	TaskID    string
	WorkerID  string
	Attempt   int
	Detail    []byte   // JSON object, nil when the event has no detail
	Job       *Summary // nil when the event carries no job
}

// Summary is the latest state of a job, as a backend keeps it in its jobs
// table: the columns it filters and orders on, and the whole client view.
type Summary struct {
	ID           string
	Client       string
	Blueprint    string
	Status       string
	CurrentState string
	ErrorMessage string
	ParentJobID  string
	CreatedAt    time.Time  // never changes once stored
	UpdatedAt    time.Time  // a summary replaces a stored one not newer than it
	FinishedAt   *time.Time // nil while the job runs
	View         []byte     // protocol.Job as JSON
	LiveStore    string     // Event.LiveStore; "" keeps the stored one
}

// Encode validates and normalises an event for a backend. Errors wrap
// ErrInvalidEvent. An event that went through a Recorder is encoded once,
// when it was recorded.
func Encode(ev Event) (Encoded, error) {
	if ev.enc != nil {
		return *ev.enc, nil
	}
	return encode(ev)
}

// prepare fills in a missing ID and time and encodes the event now, so that
// it no longer depends on maps the caller may change.
func prepare(ev Event, now time.Time) (Event, error) {
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return ev, fmt.Errorf("history: new event id: %w", err)
		}
		ev.ID = id.String()
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	enc, err := encode(ev)
	if err != nil {
		return ev, err
	}
	ev.Detail, ev.Job, ev.enc = nil, nil, &enc
	ev.ID, ev.Time, ev.Type, ev.JobID = enc.ID, enc.Time, EventType(enc.Type), enc.JobID
	return ev, nil
}

func invalid(ev Event, format string, args ...any) error {
	return fmt.Errorf("%w: event %q (%s): %s", ErrInvalidEvent, ev.ID, ev.Type, fmt.Sprintf(format, args...))
}

func encode(ev Event) (Encoded, error) {
	if ev.Type == "" {
		return Encoded{}, invalid(ev, "no type")
	}
	if ev.Time.IsZero() {
		return Encoded{}, invalid(ev, "no time")
	}
	id, err := uuid.Parse(ev.ID)
	if err != nil {
		return Encoded{}, invalid(ev, "id is not a UUID")
	}
	e := Encoded{
		ID: id.String(), Time: normTime(ev.Time), Type: Clean(string(ev.Type)),
		JobID: Clean(ev.JobID), Blueprint: Clean(ev.Blueprint), Client: Clean(ev.Client),
		State: Clean(ev.State), PrevState: Clean(ev.PrevState), TaskID: Clean(ev.TaskID),
		WorkerID: Clean(ev.WorkerID), Attempt: ev.Attempt,
	}
	if len(ev.Detail) > 0 {
		if e.Detail, err = encodeJSON(ev.Detail); err != nil {
			return Encoded{}, invalid(ev, "detail: %v", err)
		}
	}
	if ev.Job != nil {
		if err := e.summarise(ev.Job); err != nil {
			return Encoded{}, invalid(ev, "job: %v", err)
		}
		e.Job.LiveStore = Clean(ev.LiveStore)
	}
	return e, nil
}

// summarise fills e.Job from the job view, and the event's job fields from
// the job where the event left them empty.
func (e *Encoded) summarise(j *protocol.Job) error {
	id := Clean(j.ID)
	switch {
	case id == "":
		return fmt.Errorf("no id")
	case e.JobID == "":
		e.JobID = id
	case e.JobID != id:
		return fmt.Errorf("id %q but the event's job is %q", id, e.JobID)
	}
	v := *j // shallow copy: only top-level fields change
	if v.Client == "" {
		v.Client = e.Client
	}
	if v.Blueprint == "" {
		v.Blueprint = e.Blueprint
	}
	if e.Client == "" {
		e.Client = Clean(v.Client)
	}
	if e.Blueprint == "" {
		e.Blueprint = Clean(v.Blueprint)
	}
	created, updated := e.Time, e.Time
	if v.CreatedAt != nil && !v.CreatedAt.IsZero() {
		created = normTime(*v.CreatedAt)
	}
	if v.UpdatedAt != nil && !v.UpdatedAt.IsZero() {
		updated = normTime(*v.UpdatedAt)
	}
	v.CreatedAt, v.UpdatedAt = &created, &updated
	if v.FinishedAt != nil {
		f := normTime(*v.FinishedAt)
		v.FinishedAt = &f
	}
	view, err := encodeJSON(&v)
	if err != nil {
		return err
	}
	e.Job = &Summary{
		ID: id, Client: Clean(v.Client), Blueprint: Clean(v.Blueprint), Status: Clean(string(v.Status)),
		CurrentState: Clean(v.CurrentState), ErrorMessage: Clean(v.ErrorMessage), ParentJobID: Clean(v.ParentJobID),
		CreatedAt: created, UpdatedAt: updated, FinishedAt: v.FinishedAt, View: view,
	}
	return nil
}

// normTime is t in UTC, truncated to the microsecond (PostgreSQL's
// precision), so that every backend returns the same time.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Clean returns s as valid UTF-8 without NUL bytes (which PostgreSQL text
// refuses): invalid bytes and NULs become U+FFFD.
func Clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// encodeJSON marshals v and cleans the result like Clean: valid UTF-8, and
// no \u0000 escape (which PostgreSQL's jsonb refuses).
func encodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	return replaceNULEscapes(b), nil
}

// replaceNULEscapes rewrites the JSON escape \u0000 as \ufffd. It walks the
// escapes in order, so an escaped backslash followed by "u0000" is left
// alone.
func replaceNULEscapes(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	out := bytes.Clone(b)
	for i := 0; i < len(out)-1; i++ {
		if out[i] != '\\' {
			continue
		}
		if out[i+1] == 'u' && i+6 <= len(out) && string(out[i+2:i+6]) == "0000" {
			copy(out[i+2:i+6], "fffd")
		}
		i++ // skip the escaped character
	}
	return out
}

// DecodeDetail decodes a stored Detail; empty input and JSON null give nil.
func DecodeDetail(b []byte) (map[string]any, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("history: decode detail: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// DecodeJob decodes a stored job view.
func DecodeJob(b []byte) (protocol.Job, error) {
	var j protocol.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("history: decode job view: %w", err)
	}
	return j, nil
}

// Latest returns the newest job summary of each job in events, in the order
// the jobs first appear: a backend upserts these, one row per job. Of two
// summaries with the same UpdatedAt the later one wins.
func Latest(events []Encoded) []*Summary {
	var out []*Summary
	at := map[string]int{}
	for i := range events {
		s := events[i].Job
		if s == nil {
			continue
		}
		if k, ok := at[s.ID]; ok {
			if !s.UpdatedAt.Before(out[k].UpdatedAt) {
				out[k] = s
			}
			continue
		}
		at[s.ID] = len(out)
		out = append(out, s)
	}
	return out
}

// EncodeAll encodes a batch for Append.
func EncodeAll(events []Event) ([]Encoded, error) {
	out := make([]Encoded, len(events))
	for i, ev := range events {
		e, err := Encode(ev)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}
