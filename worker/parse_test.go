package worker

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              -1,
		"5":                             5 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"-3":                            -1,
		"soon":                          -1,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRetryWaitAndBackoff(t *testing.T) {
	t.Parallel()
	rl := &httpError{Status: 429, RetryAfter: -1}
	if got := retryWait(rl, time.Second, 30*time.Second); got != 30*time.Second {
		t.Errorf("429 without Retry-After: %v", got)
	}
	if got := retryWait(&httpError{Status: 429, RetryAfter: 2 * time.Second}, time.Second, 30*time.Second); got != 2*time.Second {
		t.Errorf("429 with Retry-After: %v", got)
	}
	if got := retryWait(errors.New("network"), time.Second, 30*time.Second); got != time.Second {
		t.Errorf("network error: %v", got)
	}
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second} {
		got := backoff(time.Second, attempt, 60*time.Second)
		if got > want || got < want*8/10 {
			t.Errorf("backoff(1s, %d) = %v, want %v minus up to 20%%", attempt, got, want)
		}
	}
	if got := backoff(time.Second, 1000, time.Minute); got > time.Minute {
		t.Errorf("backoff overflow: %v", got)
	}
}

func TestSessionLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		lost bool
	}{
		{&httpError{Status: 404, Message: "worker w1 is not registered: register again"}, true},
		{&httpError{Status: 403, Message: "Unauthorized: Invalid individual worker token"}, true},
		{&httpError{Status: 403, Message: "Invalid cryptographic signature"}, false},
		{&httpError{Status: 500, Message: "not found"}, false},
		{&httpError{Status: 429}, false},
		{errors.New("connection refused"), false},
	} {
		if got := sessionLost(tc.err); got != tc.lost {
			t.Errorf("sessionLost(%v) = %v", tc.err, got)
		}
	}
	if !retryable(&httpError{Status: 503}) || !retryable(errors.New("reset")) || retryable(&httpError{Status: 400}) ||
		retryable(&httpError{Status: http.StatusConflict}) || retryable(errBadResponse) {
		t.Error("retryable misclassifies")
	}
}

func TestValidateJSONSubset(t *testing.T) {
	t.Parallel()
	schema, err := normalizeSchema(map[string]any{
		"type": "object",
		"properties": map[string]any{
			"n":     map[string]any{"type": "integer"},
			"x":     map[string]any{"type": "number"},
			"mode":  map[string]any{"enum": []any{"fast", "slow"}},
			"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"opt":   map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "null"}}},
			"inner": map[string]any{"type": "object", "required": []string{"a"}},
		},
		"required":             []string{"n"},
		"additionalProperties": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	for doc, ok := range map[string]bool{
		`{"n": 5}`:                    true,
		`{"n": 5.0}`:                  false,
		`{"n": true}`:                 false,
		`{"x": 1}`:                    false, // n required
		`{"n": 1, "x": 1.5}`:          true,
		`{"n": 1, "x": "1"}`:          false,
		`{"n": 1, "mode": "fast"}`:    true,
		`{"n": 1, "mode": "medium"}`:  false,
		`{"n": 1, "tags": ["a"]}`:     true,
		`{"n": 1, "tags": ["a", 1]}`:  false,
		`{"n": 1, "opt": null}`:       true,
		`{"n": 1, "opt": 3}`:          false,
		`{"n": 1, "inner": {}}`:       false,
		`{"n": 1, "inner": {"a": 1}}`: true,
		`{"n": 1, "other": 1}`:        false,
		`null`:                        false,
		`[1]`:                         false,
	} {
		v, err := protocol.DecodeJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := validateJSON(v, schema, "params"); (err == nil) != ok {
			t.Errorf("%s: valid=%v, want %v (%v)", doc, err == nil, ok, err)
		}
	}
}

func FuzzParseOrchestratorsConfig(f *testing.F) {
	f.Add(`[{"url":"http://a:8080","priority":1,"weight":2,"token":"t"},{"url":"https://b"}]`)
	f.Add(`[{"url":"ws://x","priority":"3"}]`)
	f.Add(`[{"priority":1}]`)
	f.Add(`{"url":"http://a"}`)
	f.Add(`[null]`)
	f.Add(`[{"url":"http://a","weight":1e400}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		list, err := parseOrchestratorsConfig([]byte(raw))
		if err != nil {
			if list != nil {
				t.Fatal("list returned with an error")
			}
			return
		}
		if len(list) == 0 {
			t.Fatal("empty list without error")
		}
		for i, o := range list {
			if _, err := normalizeBaseURL(o.URL); err != nil {
				t.Fatalf("accepted bad URL %q: %v", o.URL, err)
			}
			if o.Weight < 1 {
				t.Fatalf("accepted weight %d", o.Weight)
			}
			if i > 0 && (list[i-1].Priority > o.Priority || (list[i-1].Priority == o.Priority && list[i-1].URL > o.URL)) {
				t.Fatalf("not sorted: %+v", list)
			}
		}
		cfg := Config{Token: "t", Orchestrators: list}
		if _, err := cfg.withDefaults(); err != nil {
			t.Fatalf("parsed config rejected by New: %v", err)
		}
	})
}

func FuzzEnvJSON(f *testing.F) {
	f.Add(`{"a": 1}`, `[{"type":"gpu","model":"T4","id":"0","properties":{"memory_gb":16}}]`, `{"nested": [1, "x"]}`)
	f.Add(`{"a": -1}`, `[{"model":"x"}]`, `[`)
	f.Add(`{}`, `[]`, `plain text`)
	f.Fuzz(func(t *testing.T, cost, devices, extra string) {
		vars := map[string]string{
			"WORKER_TOKEN": "t", "COST_PER_SKILL": cost, "WORKER_DEVICES": devices, "WORKER_EXTRA_X": extra,
		}
		cfg, err := envFrom(vars)
		if err != nil {
			return
		}
		for _, d := range cfg.Resources.Devices {
			if d.Type == "" {
				t.Fatalf("device without type accepted: %s", devices)
			}
		}
		for k, p := range cfg.CostPerSkill {
			if p < 0 {
				t.Fatalf("negative price accepted for %q", k)
			}
		}
		if v, ok := cfg.Extra["x"]; ok {
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("extra value not JSON: %v", err)
			}
			if s, isStr := v.(string); isStr && s != extra && strings.TrimSpace(extra) != "" {
				t.Fatalf("string extra changed: %q → %q", extra, s)
			}
		}
	})
}

func FuzzValidateJSON(f *testing.F) {
	f.Add(`{"type":"object","required":["a"],"properties":{"a":{"type":"integer"}}}`, `{"a": 1}`)
	f.Add(`{"anyOf":[{"type":"string"},{"enum":[1,2]}]}`, `2`)
	f.Add(`{"items":{"type":"array","items":{}}}`, `[[1],[2,[3]]]`)
	f.Fuzz(func(t *testing.T, schemaRaw, docRaw string) {
		var schema map[string]any
		if json.Unmarshal([]byte(schemaRaw), &schema) != nil || schema == nil {
			return
		}
		norm, err := normalizeSchema(schema)
		if err != nil {
			return
		}
		doc, err := protocol.DecodeJSON([]byte(docRaw))
		if err != nil {
			return
		}
		_ = validateJSON(doc, norm, "params") // must not panic
	})
}

// TestWithSecurityVerifies: a message signed from its bytes and sent with
// the security member added to them passes the orchestrator's check and
// decodes as the message.
func TestWithSecurityVerifies(t *testing.T) {
	t.Parallel()
	const key = "k3y"
	now := time.Now().Unix()
	for _, event := range []bool{false, true} {
		var msg signedMessage = signedResult{&protocol.TaskResult{JobID: "j", TaskID: "t", WorkerID: "w",
			Status: "success", Data: map[string]any{"x": 1.5, "s": "é\u2028"}, Timestamp: now}}
		if event {
			msg = signedEvent{&protocol.WorkerEvent{EventID: "e", WorkerID: "w", Timestamp: now}}
		}
		unsigned, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		sign := protocol.Sign
		if event {
			sign = protocol.SignEvent
		}
		sig, err := sign(json.RawMessage(unsigned), key)
		if err != nil {
			t.Fatal(err)
		}
		sec := &protocol.Security{Signature: sig, SignerID: "w"}
		raw, err := withSecurity(unsigned, sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.Verify(raw, protocol.VerifyOptions{Key: key, WorkerID: "w", Event: event}); err != nil {
			t.Fatalf("event=%v: %s: %v", event, raw, err)
		}
		msg.stamp(now, sec)
		want, _ := json.Marshal(msg)
		a, _ := protocol.CanonicalJSON(raw)
		b, _ := protocol.CanonicalJSON(want)
		if string(a) != string(b) {
			t.Fatalf("event=%v: sent %s, want the message %s", event, raw, want)
		}
	}
	if raw, err := withSecurity([]byte(`{}`), &protocol.Security{Signature: "s"}); err != nil || string(raw) != `{"security":{"signature":"s"}}` {
		t.Fatalf("empty object: %s %v", raw, err)
	}
}

// TestPolledTaskDecoding: a polled task's params stay verbatim, and a task
// is refused exactly when decoding it whole (params into a map) would be.
func TestPolledTaskDecoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, params string
		bad        bool
	}{
		{in: `{"job_id":"j","task_id":"t","type":"x","params":{"b": [1, 2.50]},"attempt":2}`, params: `{"b": [1, 2.50]}`},
		{in: `{"job_id":"j","task_id":"t","type":"x","params":null}`, params: `{}`},
		{in: `{"job_id":"j","task_id":"t","type":"x"}`, params: `{}`},
		{in: `{"job_id":"j","task_id":"t","type":"x","params":"text"}`, bad: true},
		{in: `{"job_id":"j","task_id":"t","type":"x","params":[1]}`, bad: true},
		{in: `{"job_id":"j","task_id":"t","type":"x","params":{"a":}}`, bad: true},
	} {
		var p polledTask
		err := json.Unmarshal([]byte(tc.in), &p)
		if err == nil {
			err = p.complete()
		}
		if (err != nil) != tc.bad {
			t.Errorf("%s: error %v, want one: %v", tc.in, err, tc.bad)
			continue
		}
		if tc.bad {
			continue
		}
		if string(p.rawParams) != tc.params || string(p.raw) != tc.in || p.JobID != "j" || p.TaskID != "t" || p.Type != "x" {
			t.Errorf("%s: decoded as %+v with params %s", tc.in, p.TaskPayload, p.rawParams)
		}
	}
}

// FuzzPolledTask: a task that decodes whole decodes as a polled task to
// the same fields, and a polled task's params are always an object (or
// absent) kept verbatim.
func FuzzPolledTask(f *testing.F) {
	f.Add(`{"job_id":"j","task_id":"t","type":"x","params":{"a":1},"priority":2}`)
	f.Add(`{"task_id":"t","type":"x","params":"s"}`)
	f.Add(`{"task_id":"t","type":"x","PARAMS":{"b":2}, "params":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		var p polledTask
		err := json.Unmarshal([]byte(in), &p)
		var whole protocol.TaskPayload
		if json.Unmarshal([]byte(in), &whole) == nil && err != nil {
			t.Fatalf("%q decodes whole but not as a polled task: %v", in, err)
		}
		if err != nil {
			return
		}
		if string(p.raw) != strings.Trim(in, " \t\r\n") {
			t.Fatalf("%q kept as %q", in, p.raw)
		}
		var params map[string]any
		if len(p.rawParams) > 0 && string(p.rawParams) != "null" {
			if p.rawParams[0] != '{' || !json.Valid(p.rawParams) {
				t.Fatalf("%q: params kept as %q", in, p.rawParams)
			}
			_ = json.Unmarshal(p.rawParams, &params) // may overflow a float64
		}
		if whole.TaskID != "" && (p.TaskID != whole.TaskID || p.Attempt != whole.Attempt || p.Priority != whole.Priority) {
			t.Fatalf("%q: polled %+v, whole %+v", in, p.TaskPayload, whole)
		}
		for k := range params {
			if _, ok := whole.Params[k]; whole.TaskID != "" && !ok {
				t.Fatalf("%q: param %q kept but not in the whole task's %v", in, k, whole.Params)
			}
		}
	})
}
