package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vectors of reference/worker-protocol.md §4.2, computed with the
// RXON implementation (token "secret-token").
const (
	vectorToken        = "secret-token"
	vectorHeartbeatRaw = `{"worker_id":"worker-01","status":"idle","usage":{"cpu_load_percent":12.5,"ram_used_gb":3.0},"current_tasks":[],"available_skills":["resize"],"skills_hash":"abc123","metadata":null,"timestamp":1767225600,"security":{"signature":"x","signer_id":"worker-01"}}`
	vectorHeartbeatCan = `{"available_skills":["resize"],"current_tasks":[],"skills_hash":"abc123","status":"idle","timestamp":1767225600,"usage":{"cpu_load_percent":12.5,"ram_used_gb":3},"worker_id":"worker-01"}`
	vectorHeartbeatSig = "5aa7158e2c3ffb3369559d7b7756a2bc5895acf72f0e5573f59ed8c282c98f8f"
	vectorEventRaw     = `{"event_id":"e1","worker_id":"w1","origin_worker_id":"w1","event_type":"progress","payload":{"progress":0.5,"message":"half"},"origin_task_id":"t1","bubbling_chain":[],"target_job_id":"j1","target_task_id":"t1","trace_context":{},"priority":0.0,"timestamp":1767225600}`
	vectorEventCan     = `{"event_id":"e1","event_type":"progress","origin_task_id":"t1","origin_worker_id":"w1","payload":{"message":"half","progress":0.5},"priority":0,"target_job_id":"j1","target_task_id":"t1","timestamp":1767225600,"trace_context":{},"worker_id":"w1"}`
	vectorEventSig     = "645c562310291edde51bfdfef7cb9828deaa6f32e3a2f55cf2ef34482270964c"
	vectorTime         = 1767225600
)

func TestVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw, canonical, sig string
		drop                      []string
	}{
		{"heartbeat", vectorHeartbeatRaw, vectorHeartbeatCan, vectorHeartbeatSig, []string{"security"}},
		{"event", vectorEventRaw, vectorEventCan, vectorEventSig, []string{"security", "bubbling_chain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tc.raw), tc.drop...)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.canonical {
				t.Fatalf("canonical form\n got %s\nwant %s", got, tc.canonical)
			}
			if sig := SignBytes(got, vectorToken); sig != tc.sig {
				t.Fatalf("signature %s, want %s", sig, tc.sig)
			}
		})
	}
}

func TestSignStructsMatchVectors(t *testing.T) {
	t.Parallel()
	hb := Heartbeat{
		WorkerID: "worker-01", Status: "idle",
		Usage:           &Usage{CPULoadPercent: 12.5, RAMUsedGB: 3.0},
		AvailableSkills: []string{"resize"}, SkillsHash: "abc123",
		Timestamp: vectorTime,
	}
	// current_tasks is an empty list in the vector; omitempty drops it, so
	// sign the map form the SDK would send.
	var m map[string]any
	raw, _ := json.Marshal(hb)
	_ = json.Unmarshal(raw, &m)
	m["current_tasks"] = []any{}
	sig, err := Sign(m, vectorToken)
	if err != nil || sig != vectorHeartbeatSig {
		t.Fatalf("heartbeat signature %s (%v), want %s", sig, err, vectorHeartbeatSig)
	}

	ev := WorkerEvent{
		EventID: "e1", WorkerID: "w1", OriginWorkerID: "w1", EventType: "progress",
		Payload:      map[string]any{"progress": 0.5, "message": "half"},
		OriginTaskID: "t1", BubblingChain: []string{"relay-1"}, TargetJobID: "j1", TargetTaskID: "t1",
		TraceContext: map[string]string{}, Timestamp: vectorTime,
	}
	raw, _ = json.Marshal(ev)
	m = nil
	_ = json.Unmarshal(raw, &m)
	m["trace_context"] = map[string]any{}
	sig, err = SignEvent(m, vectorToken)
	if err != nil || sig != vectorEventSig {
		t.Fatalf("event signature %s (%v), want %s", sig, err, vectorEventSig)
	}
}

func TestCanonicalEdgeCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{"s":"привет <b>&amp;</b>"}`, `{"s":"привет <b>&amp;</b>"}`},
		{`{"s":"a\u2028b\u2029c"}`, "{\"s\":\"a\u2028b\u2029c\"}"},
		{`{"s":"tab\tquote\"back\\ctl\u0001"}`, `{"s":"tab\tquote\"back\\ctl\u0001"}`},
		{`{"a":1e-6,"b":9.5e-6,"c":1.5e-6,"d":1.5e-7,"e":2.5e-10}`, `{"a":1e-6,"b":9.5e-6,"c":1.5e-6,"d":1.5e-7,"e":2.5e-10}`},
		{`{"a":0.1,"b":123456789012.5,"c":3.0,"d":-2.0,"e":1e-5,"f":0.00012}`, `{"a":0.1,"b":123456789012.5,"c":3,"d":-2,"e":0.00001,"f":0.00012}`},
		{`{"big":123456789012345678901234567890,"neg":-5}`, `{"big":123456789012345678901234567890,"neg":-5}`},
		{`{"z":{"b":null,"a":[null,{"x":null,"y":1}]},"n":null}`, `{"z":{"a":[null,{"y":1}]}}`},
		{`{"e":{},"l":[]}`, `{"e":{},"l":[]}`},
		{`{"b":true,"a":false}`, `{"a":false,"b":true}`},
	} {
		got, err := CanonicalJSON([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestDecodeJSONRefusesTrailingData(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{} {}`, `{}]`, `{}}`, `[1]]`, `1 2`, `{} x`} {
		if v, err := DecodeJSON([]byte(in)); err == nil {
			t.Errorf("DecodeJSON(%s) = %v, want a trailing-data error", in, v)
		}
	}
	for _, in := range []string{`{}`, " {} \n\t", `[1]`, `"s"`} {
		if _, err := DecodeJSON([]byte(in)); err != nil {
			t.Errorf("DecodeJSON(%q): %v", in, err)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorTime, 0)
	sign := func(m map[string]any) []byte {
		sig, err := Sign(m, vectorToken)
		if err != nil {
			t.Fatal(err)
		}
		m["security"] = map[string]any{"signature": sig, "signer_id": "w1"}
		raw, _ := json.Marshal(m)
		return raw
	}
	base := func(ts int64) map[string]any {
		return map[string]any{"worker_id": "w1", "status": "idle", "timestamp": ts}
	}
	opts := VerifyOptions{Key: vectorToken, WorkerID: "w1", Now: now}

	if err := Verify(sign(base(vectorTime)), opts); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
	// VerifyEnvelope hands back what it checked: the signature a replay
	// check keys on, and the timestamp.
	valid := sign(base(vectorTime))
	env, err := VerifyEnvelope(valid, opts)
	want, _ := Sign(base(vectorTime), vectorToken)
	if err != nil || env.Security == nil || env.Security.Signature != want || env.Timestamp.String() != strconv.Itoa(vectorTime) {
		t.Fatalf("VerifyEnvelope: %+v, %v; want signature %s", env, err, want)
	}
	if env, err := VerifyEnvelope(tamper(valid), opts); !errors.Is(err, ErrBadSignature) || env.Security != nil {
		t.Fatalf("VerifyEnvelope of a tampered message: %+v, %v", env, err)
	}
	if err := Verify(sign(base(vectorTime-60)), opts); err != nil {
		t.Fatalf("60 s old message rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		raw  []byte
		opts VerifyOptions
		want error
	}{
		"61 s old":      {sign(base(vectorTime - 61)), opts, ErrStaleTimestamp},
		"100 s future":  {sign(base(vectorTime + 100)), opts, ErrStaleTimestamp},
		"no timestamp":  {[]byte(`{"worker_id":"w1","security":{"signature":"ab"}}`), opts, ErrMissingTimestamp},
		"no security":   {[]byte(`{"worker_id":"w1","timestamp":` + strconv.Itoa(vectorTime) + `}`), opts, ErrMissingSecurity},
		"no signature":  {[]byte(`{"worker_id":"w1","timestamp":` + strconv.Itoa(vectorTime) + `,"security":{}}`), opts, ErrMissingSignature},
		"wrong key":     {sign(base(vectorTime)), VerifyOptions{Key: "other", WorkerID: "w1", Now: now}, ErrBadSignature},
		"other signer":  {sign(base(vectorTime)), VerifyOptions{Key: vectorToken, WorkerID: "w2", Now: now}, ErrSignerMismatch},
		"tampered body": {tamper(sign(base(vectorTime))), opts, ErrBadSignature},
	} {
		if err := Verify(tc.raw, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func tamper(raw []byte) []byte {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["status"] = "busy"
	out, _ := json.Marshal(m)
	return out
}

func TestVerifyEventIgnoresBubblingChain(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorTime, 0)
	var m map[string]any
	_ = json.Unmarshal([]byte(vectorEventRaw), &m)
	m["security"] = map[string]any{"signature": vectorEventSig, "signer_id": "w1"}
	m["bubbling_chain"] = []any{"relay-a", "relay-b"}
	raw, _ := json.Marshal(m)
	if err := Verify(raw, VerifyOptions{Key: vectorToken, WorkerID: "w1", Now: now, Event: true}); err != nil {
		t.Fatalf("event with a grown bubbling_chain rejected: %v", err)
	}
	if err := Verify(raw, VerifyOptions{Key: vectorToken, WorkerID: "w1", Now: now}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bubbling_chain must be signed for non-events, got %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(vectorHeartbeatRaw))
	f.Add([]byte(vectorEventRaw))
	f.Add([]byte(`{"timestamp":1767225600,"security":{"signature":"00"}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		opts := VerifyOptions{Key: vectorToken, WorkerID: "worker-01", Now: time.Unix(vectorTime, 0)}
		err := Verify(raw, opts)
		if err == nil {
			// Anything accepted must carry a signature that really matches.
			canon, cerr := CanonicalJSON(raw, "security")
			if cerr != nil {
				t.Fatalf("accepted a message that does not canonicalize: %v", cerr)
			}
			var env Envelope
			_ = json.Unmarshal(raw, &env)
			if SignBytes(canon, vectorToken) != env.Security.Signature {
				t.Fatal("accepted a message with a wrong signature")
			}
		}
	})
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(vectorHeartbeatRaw))
	f.Add([]byte(`{"a":[1,2.5,"x\u2028",null,{"b":null}],"c":1e-7}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		canon, err := CanonicalJSON(raw)
		if err != nil {
			return
		}
		// The canonical form is valid JSON and a fixed point.
		again, err := CanonicalJSON(canon)
		if err != nil {
			t.Fatalf("canonical form %q is not valid JSON: %v", canon, err)
		}
		if string(again) != string(canon) {
			t.Fatalf("canonicalization is not idempotent:\n%s\n%s", canon, again)
		}
	})
}

func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorTime, 0)
	body := []byte(`{"event":"job_finished"}`)
	h := SignWebhook("s3cret", now, body)
	if !strings.HasPrefix(h, "t=1767225600,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := VerifyWebhook("s3cret", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
		want           error
	}{
		"wrong secret": {"other", h, body, now, ErrWebhookSignature},
		"changed body": {"s3cret", h, []byte(`{"event":"job_failed"}`), now, ErrWebhookSignature},
		"too old":      {"s3cret", h, body, now.Add(10 * time.Minute), ErrWebhookStale},
		"malformed":    {"s3cret", "v1=abc", body, now, ErrWebhookSignature},
		"empty":        {"s3cret", "", body, now, ErrWebhookSignature},
	} {
		if err := VerifyWebhook(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzVerifyWebhook(f *testing.F) {
	f.Add("t=1767225600,v1=00", []byte("{}"))
	f.Add("v1=ab, t=1767225600", []byte("x"))
	f.Add("garbage", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		now := time.Unix(vectorTime, 0)
		if VerifyWebhook("k", header, body, now, time.Minute) != nil {
			return
		}
		// Accepted: the header must carry the real HMAC of "<t>.<body>".
		var ts, sig string
		for _, p := range strings.Split(header, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if k == "t" {
				ts = v
			} else if k == "v1" {
				sig = v
			}
		}
		if want := SignBytes(append([]byte(ts+"."), body...), "k"); sig != want {
			t.Fatalf("accepted %q for body %q", header, body)
		}
	})
}

// FuzzRawCanon checks the canonical form written from raw bytes against
// the one written from the decoded value, with and without dropped
// top-level members.
func FuzzRawCanon(f *testing.F) {
	f.Add([]byte(vectorHeartbeatRaw), "security")
	f.Add([]byte(`{"a":[1,2.5,"x\u2028",null,{"b":null}],"c":1e-7,"security":{"s":1}}`), "security")
	f.Add([]byte(`{"k":1,"k":null,"j":{"x":1,"x":2},"\u00e9":"\ud800","é":-0}`), "j")
	f.Add([]byte(" [ {\"b\" : 1 , \"a\" :[ ] } , 1E400 , 0.000001 , \"\xff\" ] "), "")
	f.Add([]byte("[{\"\x86\":0,\"\xf5\":[]}]"), "") // two keys that decode to one
	f.Fuzz(func(t *testing.T, raw []byte, drop string) {
		if !json.Valid(raw) {
			return
		}
		drops := []string{drop}
		got, gotErr := canonicalValid(raw, drops)
		v, err := DecodeJSON(raw)
		if err != nil {
			t.Fatalf("valid JSON %q does not decode: %v", raw, err)
		}
		if m, ok := v.(map[string]any); ok {
			delete(m, drop)
		}
		want, wantErr := Canonical(v)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, want %v", raw, gotErr, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q dropping %q:\n got %s\nwant %s", raw, drop, got, want)
		}
	})
}

// FuzzSignRawMatchesDecoded: a message signed from its encoded bytes has
// the signature of the same message decoded (or the same refusal), and
// bytes that are not one JSON value are refused.
func FuzzSignRawMatchesDecoded(f *testing.F) {
	f.Add(`{"b":"<&>","a":[1,2.50,1e3],"security":{"signature":"x"}}`)
	f.Add(`{"s":"\u00e9\u003c","n":null}`)
	f.Add(`[1] 2`)
	f.Fuzz(func(t *testing.T, in string) {
		rawSig, rawErr := Sign(json.RawMessage(in), "key")
		v, err := DecodeJSON([]byte(in))
		if err != nil {
			if rawErr == nil {
				t.Fatalf("%q does not decode (%v) but was signed", in, err)
			}
			return
		}
		sig, err := Sign(v, "key")
		if (err != nil) != (rawErr != nil) || sig != rawSig {
			t.Fatalf("%q: signed as bytes %s (%v), decoded %s (%v)", in, rawSig, rawErr, sig, err)
		}
	})
}
