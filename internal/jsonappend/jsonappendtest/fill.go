// Package jsonappendtest helps test hand-written JSON encoders against
// encoding/json.
package jsonappendtest

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Fill sets every exported field of the struct v points to, recursively,
// to a value that is not its zero value, and each to another value, so
// that json.Marshal writes every field, omitempty or not, and an encoder
// that misses a field (one added to the struct later, say) or writes one
// field's value under another's name writes other bytes than json.Marshal.
// Strings hold characters JSON escapes.
func Fill(t testing.TB, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		t.Fatalf("Fill: want a non-nil pointer, got %T", v)
	}
	var f filler
	f.fill(t, rv.Elem())
}

// filler numbers the values it sets.
type filler struct{ n int }

func (f *filler) next() int {
	f.n++
	return f.n
}

func (f *filler) fill(t testing.TB, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d<&>\u2028\"é", f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.next()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.next()) + 0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(t, v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		f.fill(t, v.Index(0))
		f.fill(t, v.Index(1))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		f.fill(t, e)
		m.SetMapIndex(reflect.ValueOf(fmt.Sprintf("k%d", f.next())).Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"n": float64(f.next()) + 0.5, "s": "<b>"}))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC).Add(time.Duration(f.next()) * time.Second)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(t, v.Field(i))
			}
		}
	default:
		t.Fatalf("Fill: no value for a %s (%s)", v.Kind(), v.Type())
	}
}
