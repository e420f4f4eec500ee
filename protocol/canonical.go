package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Canonical returns the canonical JSON form of v, which must be a value built
// from JSON types: map[string]any, []any, string, bool, nil, json.Number or any
// Go number. Use CanonicalJSON for raw bytes or Go structs.
func Canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CanonicalJSON decodes raw JSON (numbers kept exact) and returns its canonical
// form with the named top-level members removed.
func CanonicalJSON(raw []byte, dropTopLevel ...string) ([]byte, error) {
	if json.Valid(raw) {
		return canonicalValid(raw, dropTopLevel)
	}
	v, err := DecodeJSON(raw) // for its error
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok && len(dropTopLevel) > 0 {
		m = maps.Clone(m)
		for _, k := range dropTopLevel {
			delete(m, k)
		}
		v = m
	}
	return Canonical(v)
}

// DecodeJSON decodes one JSON value keeping numbers as json.Number so that
// integers survive exactly. Trailing data is an error.
func DecodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	// Anything but space after the value (a stray ']' included, which
	// dec.More would let pass) is trailing data.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: trailing data after the value")
	}
	return v, nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		writeString(buf, x)
	case json.Number:
		return writeNumber(buf, x)
	case float64:
		return writeFloat(buf, x)
	case float32:
		return writeFloat(buf, float64(x))
	case int:
		buf.WriteString(strconv.Itoa(x))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case int32:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case uint64:
		buf.WriteString(strconv.FormatUint(x, 10))
	case uint32:
		buf.WriteString(strconv.FormatUint(uint64(x), 10))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k, val := range x {
			if val != nil { // null members are dropped
				keys = append(keys, k)
			}
		}
		slices.Sort(keys) // byte order of UTF-8 equals code point order
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		// Any other Go value goes through encoding/json first.
		raw, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("canonical JSON: %w", err)
		}
		dv, err := DecodeJSON(raw)
		if err != nil {
			return err
		}
		return writeCanonical(buf, dv)
	}
	return nil
}

func writeNumber(buf *bytes.Buffer, n json.Number) error {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		// An integer literal: keep every digit (Python ints are unbounded).
		if _, ok := new(big.Int).SetString(s, 10); !ok {
			return fmt.Errorf("canonical JSON: bad number %q", s)
		}
		buf.WriteString(strings.TrimPrefix(s, "+"))
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("canonical JSON: bad number %q: %w", s, err)
	}
	return writeFloat(buf, f)
}

// writeFloat writes f the way RXON's serializer does: integral values as
// integers, other values in the shortest round-trip form, with an exponent only
// below 1e-5 in magnitude (orjson/ryu formatting).
func writeFloat(buf *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("canonical JSON: NaN and Inf are not JSON")
	}
	if f == math.Trunc(f) {
		bf := new(big.Float).SetFloat64(f)
		i, _ := bf.Int(nil)
		buf.WriteString(i.String())
		return nil
	}
	if math.Abs(f) >= 1e-5 {
		buf.WriteString(strconv.FormatFloat(f, 'f', -1, 64))
		return nil
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // e.g. 9.5e-06
	mant, exp, _ := strings.Cut(s, "e")
	sign := ""
	if strings.HasPrefix(exp, "-") {
		sign = "-"
	}
	exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	buf.WriteString(mant + "e" + sign + exp)
	return nil
}

const hexDigits = "0123456789abcdef"

// writeString escapes only what JSON requires: the quote, the backslash and
// control characters. Everything else, U+2028 and U+2029 included, is raw
// UTF-8; an invalid byte becomes U+FFFD, as decoding would make it.
func writeString[T string | []byte](buf *bytes.Buffer, s T) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				buf.WriteString(`\"`)
			case c == '\\':
				buf.WriteString(`\\`)
			case c == '\n':
				buf.WriteString(`\n`)
			case c == '\r':
				buf.WriteString(`\r`)
			case c == '\t':
				buf.WriteString(`\t`)
			case c == '\b':
				buf.WriteString(`\b`)
			case c == '\f':
				buf.WriteString(`\f`)
			case c < 0x20:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		var r rune
		var size int
		switch v := any(s[i:]).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v)
		case []byte:
			r, size = utf8.DecodeRune(v)
		}
		if r == utf8.RuneError && size == 1 {
			buf.WriteString("\ufffd")
		} else {
			buf.Write(append(buf.AvailableBuffer(), s[i:i+size]...))
		}
		i += size
	}
	buf.WriteByte('"')
}
