package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Fields left out of the signed form. "security" carries the signature
// itself; "bubbling_chain" may grow as an event is relayed.
const (
	fieldSecurity      = "security"
	fieldBubblingChain = "bubbling_chain"
)

// ReplayWindow is how far a signed message's timestamp may be from now, in
// either direction.
const ReplayWindow = 60 * time.Second

// Signing errors, matched with errors.Is. Their texts follow the upstream
// orchestrator so that existing workers recognise them.
var (
	ErrMissingTimestamp = errors.New("Missing required timestamp for replay protection")
	ErrStaleTimestamp   = errors.New("Message timestamp expired (replay protection)")
	ErrMissingSecurity  = errors.New("Missing required security context")
	ErrMissingSignature = errors.New("Missing required cryptographic signature")
	ErrBadSignature     = errors.New("Invalid cryptographic signature")
	ErrSignerMismatch   = errors.New("Signer id does not match the authenticated worker")
)

// SignBytes returns lowercase hex HMAC-SHA256 of canonical with key.
func SignBytes(canonical []byte, key string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(canonical)
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign returns the signature of a message (a Go struct or a JSON map) made with
// key. Events must be signed with SignEvent.
func Sign(msg any, key string) (string, error) {
	return sign(msg, key, fieldSecurity)
}

// SignEvent is Sign for worker events, whose bubbling_chain is not signed.
func SignEvent(msg any, key string) (string, error) {
	return sign(msg, key, fieldSecurity, fieldBubblingChain)
}

func sign(msg any, key string, drop ...string) (string, error) {
	// Encoded bytes are canonicalized as they are: json.Marshal would only
	// check and copy them, which CanonicalJSON does anyway.
	var raw []byte
	switch m := msg.(type) {
	case json.RawMessage:
		raw = m
		if raw == nil {
			raw = []byte("null") // as json.Marshal encodes it
		}
	default:
		var err error
		if raw, err = json.Marshal(msg); err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
	}
	canon, err := CanonicalJSON(raw, drop...)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return SignBytes(canon, key), nil
}

// Envelope is what the orchestrator reads from any signed message before it
// trusts the rest: its timestamp and security context.
type Envelope struct {
	Timestamp json.Number `json:"timestamp"`
	Security  *Security   `json:"security"`
}

// VerifyOptions controls Verify.
type VerifyOptions struct {
	Key      string    // the worker's master token (individual or global)
	WorkerID string    // the authenticated worker id
	Now      time.Time // zero means time.Now()
	Event    bool      // events exclude bubbling_chain from the signature
}

// Verify checks a raw signed message: a fresh integer timestamp, a security
// context whose signer (when named) is the authenticated worker, and a
// signature that matches the canonical form of the received JSON. The
// comparison runs in constant time.
func Verify(raw []byte, opts VerifyOptions) error {
	_, err := VerifyEnvelope(raw, opts)
	return err
}

// VerifyEnvelope is Verify that also returns the envelope it read, so that
// a caller who needs the signature (to refuse replays, say) does not parse
// the message again. The envelope is valid only when err is nil.
func VerifyEnvelope(raw []byte, opts VerifyOptions) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Envelope{}, fmt.Errorf("invalid JSON body: %w", err)
	}
	if err := CheckTimestamp(env.Timestamp, opts.Now); err != nil {
		return Envelope{}, err
	}
	if env.Security == nil {
		return Envelope{}, ErrMissingSecurity
	}
	if env.Security.Signature == "" {
		return Envelope{}, ErrMissingSignature
	}
	if env.Security.SignerID != "" && env.Security.SignerID != opts.WorkerID {
		return Envelope{}, ErrSignerMismatch
	}
	drop := []string{fieldSecurity}
	if opts.Event {
		drop = append(drop, fieldBubblingChain)
	}
	// The Unmarshal above checked that raw is valid JSON, which
	// CanonicalJSON would check once more.
	canon, err := canonicalValid(raw, drop)
	if err != nil {
		return Envelope{}, err
	}
	want := SignBytes(canon, opts.Key)
	if !hmac.Equal([]byte(want), []byte(env.Security.Signature)) {
		return Envelope{}, ErrBadSignature
	}
	return env, nil
}

// CheckTimestamp accepts a non-zero Unix-seconds timestamp within
// ReplayWindow of now (60 s passes, 61 s fails). An integer is what RXON
// 1.0b14 and later send; a float (older RXON sent time.time()) is rounded
// to the nearest second first.
func CheckTimestamp(ts json.Number, now time.Time) error {
	if ts == "" {
		return ErrMissingTimestamp
	}
	sec, err := ParseTimestamp(ts)
	if err != nil || sec == 0 {
		return ErrMissingTimestamp
	}
	if now.IsZero() {
		now = time.Now()
	}
	diff := now.Unix() - sec
	if diff < 0 {
		diff = -diff
	}
	if diff > int64(ReplayWindow/time.Second) {
		return ErrStaleTimestamp
	}
	return nil
}
