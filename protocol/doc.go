// Package protocol holds the wire contract shared by the orchestrator, the Go
// worker SDK and the Go client: RXON message types, job and task statuses,
// error codes, HTTP header names, and the HMAC-SHA256 message signing over
// canonical JSON that RXON workers (including the upstream Python SDK) use.
//
// Canonical JSON follows RXON's rules byte for byte: object members whose value
// is null are dropped, integral numbers are written as integers, keys are sorted
// by code point at every level, there is no whitespace, and non-ASCII text is
// written as raw UTF-8 (see Canonical). A signature is the lowercase hex of
// HMAC-SHA256(token, canonical bytes) taken over the message without its
// top-level "security" member (and, for events, without "bubbling_chain").
package protocol
