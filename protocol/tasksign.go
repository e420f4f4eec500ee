package protocol

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
)

// Task signatures: with ORCHESTRATOR_SECRET_KEY set, the orchestrator
// signs every task it hands out (TaskPayload.Sig), and a worker holding the
// same key checks that the task came from it. RXON 1.0b17 workers (Python
// SDK 1.0b20) check it as follows, and so does VerifyTask: decode the
// payload into RXON's TaskPayload (members it does not know, such as
// attempt, are dropped; a params_metadata entry's size of 0, its default,
// too), leave out security, sig and orchestrator_signature, and compare the
// HMAC-SHA256 of the canonical JSON, made with the key, with sig.

// ErrTaskSignature is returned by VerifyTask for a task whose signature is
// missing or wrong.
var ErrTaskSignature = errors.New("task signature mismatch: the task was not signed with this orchestrator key")

// rxonTaskField reports whether RXON 1.0b17's TaskPayload has a member, of
// those that are signed.
func rxonTaskField(name string) bool {
	switch name {
	case "job_id", "task_id", "type", "params", "tracing_context", "params_metadata", "priority", "deadline",
		"metadata", "timestamp", "policy", "step", "depth", "parent_hash":
		return true
	}
	return false
}

// taskSigned returns the canonical form of a raw task that its signature
// covers, and the signature it carries (sig, or orchestrator_signature).
func taskSigned(raw []byte) (canon []byte, sig string, err error) {
	v, err := DecodeJSON(raw)
	if err != nil {
		return nil, "", fmt.Errorf("task signature: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "", errors.New("task signature: the task is not a JSON object")
	}
	for _, k := range []string{"sig", "orchestrator_signature"} {
		if s, ok := m[k].(string); ok && s != "" && sig == "" {
			sig = s
		}
	}
	for k := range m {
		if !rxonTaskField(k) {
			delete(m, k)
		}
	}
	if files, ok := m["params_metadata"].(map[string]any); ok {
		for _, f := range files {
			if fm, ok := f.(map[string]any); ok {
				if n, ok := fm["size"].(json.Number); ok && n == "0" {
					delete(fm, "size")
				}
			}
		}
	}
	canon, err = Canonical(m)
	return canon, sig, err
}

// SignTask sets p.Sig to the orchestrator's signature of the task, made
// with key.
func SignTask(p *TaskPayload, key string) error {
	if key == "" {
		return errors.New("task signature: the key is empty")
	}
	p.Sig = ""
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("task signature: %w", err)
	}
	canon, _, err := taskSigned(raw)
	if err != nil {
		return err
	}
	p.Sig = SignBytes(canon, key)
	return nil
}

// VerifyTask checks the signature of a task as received (raw JSON)
// against key.
func VerifyTask(raw []byte, key string) error {
	canon, sig, err := taskSigned(raw)
	if err != nil {
		return err
	}
	if sig == "" {
		return fmt.Errorf("%w (it carries none)", ErrTaskSignature)
	}
	if !hmac.Equal([]byte(SignBytes(canon, key)), []byte(sig)) {
		return ErrTaskSignature
	}
	return nil
}
