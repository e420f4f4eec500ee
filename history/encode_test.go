package history

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain": "plain", "日本🌍": "日本🌍", "a\x00b": "a\uFFFDb", "x\xffy": "x\uFFFDy", "": "",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplaceNULEscapes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":"x\u0000y"}`:      `{"a":"x\ufffdy"}`,
		`{"a":"\\u0000"}`:       `{"a":"\\u0000"}`, // an escaped backslash, then text
		`{"a":"\\\u0000"}`:      `{"a":"\\\ufffd"}`,
		`{"\u0000":"\u00001"}`:  `{"\ufffd":"\ufffd1"}`,
		`{"a":"no escapes"}`:    `{"a":"no escapes"}`,
		`{"a":"\"\u0000\""}`:    `{"a":"\"\ufffd\""}`,
		`{"a":"\u00000\u0000"}`: `{"a":"\ufffd0\ufffd"}`,
	} {
		got := string(replaceNULEscapes([]byte(in)))
		if got != want {
			t.Errorf("replaceNULEscapes(%s) = %s, want %s", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s is no longer JSON", got)
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("x", 5*3600)
	when := time.Date(2030, 1, 2, 3, 4, 5, 999999999, zone)
	id := uuid.New()
	created := when.Add(-time.Hour)
	e, err := Encode(Event{
		ID: strings.ToUpper(id.String()), Time: when, Type: JobEnded, Attempt: 2,
		Detail: map[string]any{"s": "a\x00"},
		Job:    &protocol.Job{ID: "j1", Client: "c", Blueprint: "bp", Status: protocol.StatusFinished, CreatedAt: &created},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != id.String() || e.JobID != "j1" || e.Client != "c" || e.Blueprint != "bp" {
		t.Fatalf("encoded %+v", e)
	}
	if e.Time.Location() != time.UTC || e.Time.Nanosecond() != 999999000 {
		t.Fatalf("time %v not UTC microseconds", e.Time)
	}
	if string(e.Detail) != `{"s":"a\ufffd"}` {
		t.Fatalf("detail %s", e.Detail)
	}
	s := e.Job
	if s == nil || !s.CreatedAt.Equal(created.Truncate(time.Microsecond)) || !s.UpdatedAt.Equal(e.Time) || s.Status != "finished" {
		t.Fatalf("summary %+v", s)
	}
	var view protocol.Job
	if err := json.Unmarshal(s.View, &view); err != nil || view.UpdatedAt == nil || !view.UpdatedAt.Equal(e.Time) {
		t.Fatalf("view %s (%v)", s.View, err)
	}
	if _, err := Encode(Event{ID: id.String(), Type: JobEnded}); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("no time: %v", err)
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	sum := func(id string, s int, status string) Encoded {
		return Encoded{Job: &Summary{ID: id, UpdatedAt: at(s), Status: status}}
	}
	got := Latest([]Encoded{sum("a", 1, "x"), {}, sum("b", 5, "y"), sum("a", 3, "z"), sum("b", 4, "old"), sum("a", 3, "tie")})
	if len(got) != 2 || got[0].ID != "a" || got[0].Status != "tie" || got[1].ID != "b" || got[1].Status != "y" {
		t.Fatalf("Latest = %+v %+v", got[0], got[1])
	}
}

func TestCursorAndPage(t *testing.T) {
	t.Parallel()
	c := CursorAt(time.Unix(1, 123456789), "job:1")
	p, err := ParseCursor(c.String())
	if err != nil || !p.CreatedAt.Equal(c.CreatedAt) || p.ID != "job:1" {
		t.Fatalf("round trip %q: %+v %v", c, p, err)
	}
	limit, after, err := JobFilter{Cursor: c.String(), Limit: 5000}.Page()
	if err != nil || limit != MaxLimit || after.CreatedAt.Nanosecond() != 123456000 {
		t.Fatalf("Page = %d %+v %v", limit, after, err)
	}
	if limit, after, _ := (JobFilter{}).Page(); limit != DefaultLimit || after != nil {
		t.Fatalf("default page %d %v", limit, after)
	}
	if _, _, err := (Nop{}).ListJobs(t.Context(), JobFilter{Cursor: "x"}); !errors.Is(err, ErrInvalidCursor) {
		t.Fatalf("Nop accepts a bad cursor: %v", err)
	}
}
