package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// FuzzSelfDecodingBodies checks what strictUnmarshal relies on when it
// calls a signed message's own UnmarshalJSON instead of json.Unmarshal:
// that both give the same value, and an error on the same bodies, worded
// alike (trailing data and invalid JSON included).
func FuzzSelfDecodingBodies(f *testing.F) {
	for _, seed := range []string{
		`{"job_id":"j","task_id":"t","status":"success","data":{"x":[1,2]},"timestamp":1.5}`,
		`{"worker_id":"w1","timestamp":"x"}`, `{"job_id":"j"} {}`, `{"job_id":"j"}x`, `{"job_id":`,
		`{"data":[]}`, `{"error":{"code":"E"}}`, `{"error":"flat"}`, `{"skill_dependencies":5}`, `{}`, `[]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, newMsg := range []func() json.Unmarshaler{
			func() json.Unmarshaler { return new(protocol.TaskResult) },
			func() json.Unmarshaler { return new(protocol.Registration) },
			func() json.Unmarshaler { return new(protocol.Heartbeat) },
			func() json.Unmarshaler { return new(protocol.WorkerEvent) },
		} {
			direct, via := newMsg(), newMsg()
			directErr := direct.UnmarshalJSON([]byte(body))
			viaErr := json.Unmarshal([]byte(body), via)
			if fmt.Sprint(directErr) != fmt.Sprint(viaErr) {
				t.Fatalf("%T of %q: UnmarshalJSON says %v, json.Unmarshal %v", direct, body, directErr, viaErr)
			}
			if directErr == nil && !reflect.DeepEqual(direct, via) {
				t.Fatalf("%T of %q: UnmarshalJSON gives %+v, json.Unmarshal %+v", direct, body, direct, via)
			}
		}
	})
}
