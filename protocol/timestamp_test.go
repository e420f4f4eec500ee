package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"1796280888":      1796280888,
		"1796280888.33":   1796280888,
		"1796280888.5":    1796280889,
		"1796280888.9999": 1796280889,
		"1.79628088833e9": 1796280888,
		"1796280888e0":    1796280888,
		"-5":              -5,
		"0.4":             0,
	} {
		got, err := ParseTimestamp(json.Number(in))
		if err != nil || got != want {
			t.Errorf("ParseTimestamp(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "1e300", "-1e300", "253402300800", "9223372036854775807", "1e19"} {
		if got, err := ParseTimestamp(json.Number(in)); err == nil {
			t.Errorf("ParseTimestamp(%q) = %d, want an error", in, got)
		}
	}
}

// Older RXON versions send time.time(): a float timestamp is rounded and
// then held to the same ±60 s window as an integer one.
func TestCheckTimestampAcceptsFloats(t *testing.T) {
	t.Parallel()
	now := time.Unix(1796280888, 0)
	for ts, want := range map[string]error{
		"1796280888":      nil,
		"1796280888.33":   nil,
		"1796280828.0":    nil,               // 60 s
		"1796280827.6":    nil,               // rounds to 60 s
		"1796280827.4":    ErrStaleTimestamp, // rounds to 61 s
		"1796280948.49":   nil,               // 60 s ahead
		"1796280948.5":    ErrStaleTimestamp, // rounds to 61 s ahead
		"1.796280888e9":   nil,
		"0.3":             ErrMissingTimestamp, // rounds to zero
		"0":               ErrMissingTimestamp,
		"1e300":           ErrMissingTimestamp, // no clock says that
		"-1796280888.5":   ErrStaleTimestamp,
		"1796280888.0001": nil,
	} {
		if err := CheckTimestamp(json.Number(ts), now); !errors.Is(err, want) {
			t.Errorf("CheckTimestamp(%s) = %v, want %v", ts, err, want)
		}
	}
}

// Every signed worker message decodes a float timestamp (rounded) and keeps
// refusing a timestamp that is no number, naming the field.
func TestMessagesDecodeFloatTimestamps(t *testing.T) {
	t.Parallel()
	msgs := map[string]func() (any, func() int64){
		"registration": func() (any, func() int64) { var m Registration; return &m, func() int64 { return m.Timestamp } },
		"heartbeat":    func() (any, func() int64) { var m Heartbeat; return &m, func() int64 { return m.Timestamp } },
		"result":       func() (any, func() int64) { var m TaskResult; return &m, func() int64 { return m.Timestamp } },
		"event":        func() (any, func() int64) { var m WorkerEvent; return &m, func() int64 { return m.Timestamp } },
	}
	for name, mk := range msgs {
		for body, want := range map[string]int64{
			`{"worker_id":"w","timestamp":1796280888.33}`: 1796280888,
			`{"worker_id":"w","timestamp":1796280888.5}`:  1796280889,
			`{"worker_id":"w","timestamp":1796280888}`:    1796280888,
			`{"worker_id":"w","timestamp":null}`:          0,
			`{"worker_id":"w"}`:                           0,
		} {
			m, ts := mk()
			if err := json.Unmarshal([]byte(body), m); err != nil || ts() != want {
				t.Errorf("%s %s: timestamp %d, %v; want %d", name, body, ts(), err, want)
			}
		}
		for body, wantErr := range map[string]string{
			`{"worker_id":"w","timestamp":"1796280888"}`: `"timestamp"`,
			`{"worker_id":"w","timestamp":true}`:         `"timestamp"`,
			`{"worker_id":7,"timestamp":1796280888}`:     `"worker_id"`,
		} {
			m, _ := mk()
			err := json.Unmarshal([]byte(body), m)
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || !strings.Contains(`"`+te.Field+`"`, wantErr) {
				t.Errorf("%s %s: error %v (field %q), want a type error for %s", name, body, err, fieldOf(te), wantErr)
			}
		}
	}
	for name, mk := range msgs {
		m, _ := mk()
		if err := json.Unmarshal([]byte(`{"worker_id":"w","timestamp":1e300}`), m); err == nil || !strings.Contains(err.Error(), `"timestamp"`) {
			t.Errorf("%s: a timestamp of 1e300 gave %v", name, err)
		}
	}
	// The other fields still decode as before.
	var r TaskResult
	if err := json.Unmarshal([]byte(`{"job_id":"j","task_id":"t","status":"failure","error":"boom","timestamp":1796280888.2,
		"security":{"signature":"ab","signer_id":"w"}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.JobID != "j" || r.TaskID != "t" || r.Error == nil || r.Error.Message != "boom" || r.Security.SignerID != "w" || r.Timestamp != 1796280888 {
		t.Errorf("decoded %+v", r)
	}
}

func fieldOf(te *json.UnmarshalTypeError) string {
	if te == nil {
		return ""
	}
	return te.Field
}

// A registration signed by the RXON library with a float timestamp (as
// older versions sent it) verifies: the signature covers the float as
// written. The vector was made with rxon 1.0b13's sign_payload.
func TestVerifyFloatTimestampVector(t *testing.T) {
	t.Parallel()
	msg := map[string]any{"worker_id": "gpu-worker-01", "worker_type": "gpu_worker", "timestamp": 1796280888.33,
		"capabilities": map[string]any{"hostname": "h", "cost_per_skill": map[string]any{"transcode_video": 0.0005}}}
	const want = "5268f4c211508ce69965dcff0cb294078f4d15536fd6af109bde8a5843283f5d"
	sig, err := Sign(msg, "super-secret-gpu-worker-token")
	if err != nil || sig != want {
		t.Fatalf("Sign = %s, %v; want %s", sig, err, want)
	}
	msg["security"] = map[string]any{"signature": sig, "signer_id": "gpu-worker-01"}
	raw, _ := json.Marshal(msg)
	if err := Verify(raw, VerifyOptions{Key: "super-secret-gpu-worker-token", WorkerID: "gpu-worker-01", Now: time.Unix(1796280900, 0)}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(raw, VerifyOptions{Key: "super-secret-gpu-worker-token", WorkerID: "gpu-worker-01", Now: time.Unix(1796280950, 0)}); !errors.Is(err, ErrStaleTimestamp) {
		t.Fatalf("Verify 62 s later: %v, want %v", err, ErrStaleTimestamp)
	}
}

// A task's deadline goes out as an integer (RXON 1.0b17's TaskPayload
// refuses a fraction) and is read from an integer or, from orchestrators
// that sent fractions, rounded down; anything else is refused.
func TestTaskDeadlineIsWholeSeconds(t *testing.T) {
	t.Parallel()
	out, err := json.Marshal(TaskPayload{JobID: "j", TaskID: "t", Type: "x", Deadline: 1796280888})
	if err != nil || !strings.Contains(string(out), `"deadline":1796280888,`) {
		t.Fatalf("encoded %s, %v", out, err)
	}
	for in, want := range map[string]UnixSeconds{`1796280888`: 1796280888, `1796280888.999`: 1796280888, `1.7962808885e9`: 1796280888, `null`: 0} {
		var p TaskPayload
		if err := json.Unmarshal([]byte(`{"deadline":`+in+`}`), &p); err != nil || p.Deadline != want {
			t.Errorf("deadline %s: %d, %v; want %d", in, p.Deadline, err, want)
		}
	}
	for _, in := range []string{`"1796280888"`, `true`, `{}`, `1e300`} {
		var p TaskPayload
		if err := json.Unmarshal([]byte(`{"deadline":`+in+`}`), &p); err == nil {
			t.Errorf("deadline %s accepted as %d", in, p.Deadline)
		}
	}
}
