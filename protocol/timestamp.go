package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// maxTimestamp bounds a message timestamp (the end of year 9999): larger
// values are nobody's clock, and the bound keeps arithmetic on them exact.
const maxTimestamp = 253402300799

// ParseTimestamp reads a message timestamp in Unix seconds: an integer, as
// RXON 1.0b14 and later send, or a number with a fraction or an exponent,
// as older RXON versions sent (time.time()), rounded to the nearest second.
func ParseTimestamp(n json.Number) (int64, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i < -maxTimestamp || i > maxTimestamp {
			return 0, errors.New("timestamp out of range")
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, errors.New("timestamp is not a number")
	}
	if math.IsNaN(f) || math.Abs(f) > maxTimestamp {
		return 0, errors.New("timestamp out of range")
	}
	return int64(math.Round(f)), nil
}

// unixSeconds decodes a message's timestamp with ParseTimestamp. A value
// that is no JSON number is a type error naming the field, as for any
// other field.
type unixSeconds int64

var int64Type = reflect.TypeFor[int64]()

func (u *unixSeconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: int64Type}
	}
	sec, err := ParseTimestamp(json.Number(b))
	if err != nil {
		return fmt.Errorf("field \"timestamp\": %s is not a Unix time in seconds", b)
	}
	*u = unixSeconds(sec)
	return nil
}

// jsonValueKind names a JSON value's kind as encoding/json's type errors do.
func jsonValueKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "value"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	}
	return "value"
}

// unwrapped makes a type error read as if the message had been decoded
// directly: the wrapper's embedded field is no part of the field's path.
func unwrapped(err error, structName string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		te.Struct = structName
		te.Field = strings.TrimPrefix(te.Field, "plain.")
	}
	return err
}

// The signed messages a worker sends accept a float timestamp (rounded);
// their Timestamp field stays an int64 of Unix seconds.

func (m *Registration) UnmarshalJSON(b []byte) error {
	type plain Registration
	aux := struct {
		*plain
		Timestamp unixSeconds `json:"timestamp"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return unwrapped(err, "Registration")
	}
	m.Timestamp = int64(aux.Timestamp)
	return nil
}

func (m *Heartbeat) UnmarshalJSON(b []byte) error {
	type plain Heartbeat
	aux := struct {
		*plain
		Timestamp unixSeconds `json:"timestamp"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return unwrapped(err, "Heartbeat")
	}
	m.Timestamp = int64(aux.Timestamp)
	return nil
}

func (m *TaskResult) UnmarshalJSON(b []byte) error {
	type plain TaskResult
	aux := struct {
		*plain
		Timestamp unixSeconds `json:"timestamp"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return unwrapped(err, "TaskResult")
	}
	m.Timestamp = int64(aux.Timestamp)
	return nil
}

func (m *WorkerEvent) UnmarshalJSON(b []byte) error {
	type plain WorkerEvent
	aux := struct {
		*plain
		Timestamp unixSeconds `json:"timestamp"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return unwrapped(err, "WorkerEvent")
	}
	m.Timestamp = int64(aux.Timestamp)
	return nil
}

// UnixSeconds is a time in whole Unix seconds, as RXON 1.0b17 types a
// task's deadline (its TaskPayload refuses a number with a fraction). It
// decodes from an integer or, as orchestrators before it sent deadlines,
// from a number with a fraction, rounded down.
type UnixSeconds int64

// UnmarshalJSON reads an integer or a number with a fraction.
func (u *UnixSeconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*u = UnixSeconds(i)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxTimestamp {
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: int64Type}
	}
	*u = UnixSeconds(math.Floor(f))
	return nil
}
