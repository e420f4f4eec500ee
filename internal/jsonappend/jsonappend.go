// Package jsonappend appends JSON values to a byte slice exactly as
// encoding/json's Marshal writes them, without reflection: the pieces of
// hand-written encoders for the records the live state writes on every
// commit, where encoding/json's reflection cost a tenth of a job's CPU.
// An encoder built of these must be tested against json.Marshal of the
// struct it stands for (see jsonappendtest.Fill).
package jsonappend

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// String appends s as a JSON string: with <, > and & escaped for HTML,
// invalid UTF-8 replaced by U+FFFD, and the line and paragraph separators
// escaped for JavaScript, as json.Marshal writes it.
func String(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plain says which ASCII bytes a JSON string holds as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Float appends f as json.Marshal writes a float64: the shortest decimal
// that reads back as f, in exponent form only below 1e-6 or from 1e21 on,
// a one-digit negative exponent not padded (1e-7, not 1e-07). NaN and the
// infinities are refused, as json.Marshal refuses them.
func Float(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// Time appends t as time.Time's MarshalJSON writes it (RFC 3339 with
// nanoseconds), and fails where it fails (a year outside 0 to 9999).
func Time(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err)
	}
	return append(b, '"'), nil
}

// Strings appends a JSON array of strings; nil is null.
func Strings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, v)
	}
	return append(b, ']')
}

// StringMap appends a JSON object of strings, its keys sorted as
// json.Marshal sorts them; nil is null.
func StringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(String(b, k), ':')
		b = String(b, m[k])
	}
	return append(b, '}')
}

// FloatMap appends a JSON object of numbers, its keys sorted; nil is null.
func FloatMap(b []byte, m map[string]float64) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(String(b, k), ':')
		if b, err = Float(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// Value appends v, a value of free shape, through json.Marshal; an empty
// JSON object, common and a tenth of a small record's time in
// json.Marshal, is written directly.
func Value(b []byte, v any) ([]byte, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		if m == nil {
			return append(b, "null"...), nil
		}
		return append(b, "{}"...), nil
	}
	doc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, doc...), nil
}

// OptString appends member (a member's name with its colon, and the comma
// before it where one is due: `,"name":`) and s, unless s is empty: a
// string field tagged omitempty.
func OptString(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	return String(append(b, member...), s)
}

// OptInt appends member and n, unless n is zero: an integer field tagged
// omitempty.
func OptInt(b []byte, member string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, member...), n, 10)
}
