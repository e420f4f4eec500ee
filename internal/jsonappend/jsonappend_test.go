package jsonappend

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// same fails unless got and err are what json.Marshal gives for v: the
// same bytes, or an error from both.
func same(t *testing.T, v any, got []byte, err error) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	switch {
	case wantErr != nil && err != nil:
	case wantErr != nil || err != nil:
		t.Fatalf("%#v: json.Marshal error %v, ours %v", v, wantErr, err)
	case !bytes.Equal(got, want):
		t.Fatalf("%#v: wrote %s, json.Marshal writes %s", v, got, want)
	}
}

var texts = []string{"", "plain", "a\"b\\c\b\f\n\r\t\x00\x1f\x7f<>&", "a\xffb\xc3", "\xed\xa0\x80",
	"a\u2028b\u2029c\u00e9\U0001F600", "\ufffd", "</script>"}

var floats = []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 5e-324,
	1e20, 1e21, -1e21, 123456789.125, math.MaxFloat64, -math.MaxFloat64, 1.0 / 3, 1e100,
	math.NaN(), math.Inf(1), math.Inf(-1)}

func TestString(t *testing.T) {
	for _, s := range texts {
		same(t, s, String([]byte("x"), s)[1:], nil)
	}
}

func TestFloat(t *testing.T) {
	for _, f := range floats {
		got, err := Float(nil, f)
		same(t, f, got, err)
	}
}

func TestTime(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Date(2026, 12, 5, 23, 49, 4, 52520169, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 5*3600+30*60)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		got, err := Time(nil, tm)
		same(t, tm, got, err)
	}
}

func TestCollections(t *testing.T) {
	for _, s := range [][]string{nil, {}, {"a"}, texts} {
		same(t, s, Strings(nil, s), nil)
	}
	for _, m := range []map[string]string{nil, {}, {"z": "1", "a": "2", "M": "3", "é": "4", "": "5", "<": ">"}} {
		same(t, m, StringMap(nil, m), nil)
	}
	for _, m := range []map[string]float64{nil, {}, {"usd": 0.1, "eur": 1e21, "gbp": 1e-7}, {"x": math.NaN()}} {
		got, err := FloatMap(nil, m)
		same(t, m, got, err)
	}
	for _, v := range []any{nil, map[string]any(nil), map[string]any{}, map[string]any{"a": []any{1.5, "<"}},
		[]string(nil), map[string]any{"f": func() {}}} {
		got, err := Value(nil, v)
		same(t, v, got, err)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range texts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		same(t, s, String(nil, s), nil)
		same(t, map[string]string{s: s, "k": s}, StringMap(nil, map[string]string{s: s, "k": s}), nil)
	})
}

func FuzzFloat(f *testing.F) {
	for _, v := range floats {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		got, err := Float(nil, v)
		same(t, v, got, err)
	})
}
