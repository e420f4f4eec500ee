package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

// The vectors were made with RXON 1.0b17 (rxon.security.sign_payload of
// from_dict(TaskPayload, task), ignoring sig and orchestrator_signature),
// as the Python SDK 1.0b20 checks a task.
func TestSignTaskRXONVectors(t *testing.T) {
	t.Parallel()
	const key = "orchestrator-secret"
	for name, tc := range map[string]struct{ task, sig string }{
		"full": {`{"job_id":"job-1","task_id":"task-1","type":"transcode_video","params":{"path":"/in.mp4","quality":"low","n":2.0,"none":null,"nested":{"k":[1,2.5,"x"]}},` +
			`"tracing_context":{"traceparent":"00-abc-def-01"},"params_metadata":{"in":{"uri":"s3://b/k","size":0},"out":{"uri":"s3://b/o","size":12,"etag":"e"}},` +
			`"priority":0,"deadline":1796280900,"metadata":{"m":"v"},"timestamp":1796280888,"policy":{"allowed_skills":["transcode_video"]},"attempt":2}`,
			"73c387696b96e84c883b72f5229dae68be2b24d0fa28904b1dc56a487546aa33"},
		"small": {`{"job_id": "job-1", "task_id": "task-1", "type": "transcode_video", "params": {}, "priority": 2.5, "deadline": 1796280900, "metadata": {"m": "v"}, "timestamp": 1796280888, "attempt": 2}`,
			"e25f83fe3be7364108bcbafe2300ef30378369bbd81d2c61eee0e3b5bdbee4f2"},
	} {
		t.Run(name, func(t *testing.T) {
			var p TaskPayload
			if err := json.Unmarshal([]byte(tc.task), &p); err != nil {
				t.Fatal(err)
			}
			if err := SignTask(&p, key); err != nil || p.Sig != tc.sig {
				t.Fatalf("SignTask: %q, %v; want %s", p.Sig, err, tc.sig)
			}
			raw, _ := json.Marshal(p)
			if err := VerifyTask(raw, key); err != nil {
				t.Fatalf("VerifyTask of the signed task: %v", err)
			}
			if err := VerifyTask(raw, "another key"); !errors.Is(err, ErrTaskSignature) {
				t.Fatalf("another key: %v", err)
			}
			p.Params = map[string]any{"path": "/etc/passwd"}
			tampered, _ := json.Marshal(p)
			if err := VerifyTask(tampered, key); !errors.Is(err, ErrTaskSignature) {
				t.Fatalf("tampered params: %v", err)
			}
			if err := VerifyTask([]byte(tc.task), key); !errors.Is(err, ErrTaskSignature) {
				t.Fatalf("unsigned task: %v", err)
			}
		})
	}
	if err := SignTask(&TaskPayload{}, ""); err == nil {
		t.Fatal("an empty key signed")
	}
}
