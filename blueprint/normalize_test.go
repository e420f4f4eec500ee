package blueprint

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// roundTrip is what Normalize always did: the value through JSON.
func roundTrip(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(raw, &out)
	return out, err
}

// checkLikeRoundTrip fails unless Normalize(v) gives what the round trip
// gives (both an error, or equal values), sharing nothing with v.
func checkLikeRoundTrip(t *testing.T, v any) {
	t.Helper()
	want, werr := roundTrip(v)
	got, err := Normalize(v)
	if (err != nil) != (werr != nil) {
		t.Fatalf("Normalize(%#v): error %v, round trip: %v", v, err, werr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Normalize(%#v) = %#v, round trip: %#v", v, got, want)
	}
	if m, ok := got.(map[string]any); ok && len(m) > 0 {
		for k := range m {
			m[k] = "changed"
		}
		if again, _ := roundTrip(v); !reflect.DeepEqual(again, want) {
			t.Fatalf("Normalize(%#v) shares its maps with the value", v)
		}
	}
}

func TestNormalizeIsTheJSONForm(t *testing.T) {
	loop := map[string]any{}
	loop["self"] = loop
	deep := any("leaf")
	for range 300 {
		deep = []any{deep}
	}
	type point struct{ X, Y int }
	for _, v := range []any{
		nil, true, 1.5, "text", map[string]any(nil), []any(nil), map[string]any{}, []any{},
		map[string]any{"n": 1.0, "list": []any{"a", 2.0, nil, false}, "nested": map[string]any{"k": []any{}}},
		map[string]any{"int": 7, "struct": point{1, 2}, "strings": []string{"a"}}, // not JSON form: converted
		map[string]any{"bad": "\xff\xfe"}, map[string]any{"\xffkey": 1.0}, // invalid UTF-8: replaced
		map[string]any{"neg_zero": math.Copysign(0, -1), "big": 1e300, "small": 5e-324},
		deep,
	} {
		checkLikeRoundTrip(t, v)
	}
	for _, v := range []any{map[string]any{"nan": math.NaN()}, []any{math.Inf(1)}, loop} {
		if _, err := Normalize(v); err == nil {
			t.Errorf("Normalize(%T with a NaN, an infinity or a cycle): no error", v)
		}
	}
	if got, _ := Normalize(map[string]any{"int": 7}); got.(map[string]any)["int"] != 7.0 {
		t.Errorf("an int is not made a float64: %#v", got)
	}
}

// FuzzNormalize checks the copy of a decoded value against the round trip.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `{"a":[1,"x",{"b":null}],"c":true}`, `"\ud800"`, `{"k":-0}`,
		`[` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		checkLikeRoundTrip(t, v)
		if m, ok := v.(map[string]any); ok {
			m["\xff"] = "\xfe" // and with invalid UTF-8 added
			checkLikeRoundTrip(t, m)
		}
	})
}
