// Package jsonappendtest helps test hand-written JSON encoders against
// encoding/json.
package jsonappendtest

import (
	"reflect"
	"testing"
	"time"
)

// Fill sets every exported field of the struct v points to, recursively,
// to a value that is not its zero value, so that json.Marshal writes every
// field, omitempty or not: an encoder that misses a field (one added to
// the struct later, say) writes other bytes than json.Marshal for it.
// Strings hold characters JSON escapes.
func Fill(t testing.TB, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		t.Fatalf("Fill: want a non-nil pointer, got %T", v)
	}
	fill(t, rv.Elem())
}

func fill(t testing.TB, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("s<&>\u2028\"é")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e)
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"n": 1.5, "s": "<b>"}))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	default:
		t.Fatalf("Fill: no value for a %s (%s)", v.Kind(), v.Type())
	}
}
