package api

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Replay protection. A signed message's signature is remembered for as long
// as its timestamp could pass the freshness check, and a message that
// carries a signature seen before is refused with 409. Two kinds of message
// repeat legitimately, byte for byte, and are not refused:
//
//   - A task result. The RXON result has no attempt number and no nonce,
//     and a retried task keeps its id, so a retry that ends the same way
//     within the same second (the same worker, status, error and
//     timestamp) sends the very bytes of the attempt before. A result is
//     therefore accepted once per attempt of its task: a repeated signature
//     passes when the task is running again, on the sender, at a later
//     attempt that has not used it yet. The engine applies at most one
//     result per attempt (a result for a task that is not running on its
//     sender is ignored), so no result is ever applied twice.
//   - A heartbeat. The Python SDK may send two identical heartbeats at once
//     (a periodic one and a state change in the same second). A repeated
//     heartbeat is acknowledged and not applied again: the state it reports
//     was applied the first time, and a replay changes nothing.
//
// Registrations and events (each event has its own event_id) are refused.
//
// A result's signature is recorded in the commit that applies the result
// (Engine.SubmitResultOnce), or alone when the result is ignored, so that
// replay protection costs no store round trip of its own; a signature
// found taken then goes through useSignature as any other message's.

// msgKind is the kind of a signed worker message.
type msgKind int

const (
	msgRegistration msgKind = iota
	msgHeartbeat
	msgResult
	msgEvent
)

// signedMsg describes a signed message for Server.signed.
type signedMsg struct {
	kind msgKind
	// jobID and taskID name the task a result reports on.
	jobID, taskID string
}

// replayTTL is how long a signature is remembered: longer than any
// timestamp that passes the freshness check in either direction.
const replayTTL = 2*protocol.ReplayWindow + time.Second

func replayKey(signature string) string { return "replay:" + signature }

// useSignature records the use of a message's signature. It reports
// whether the message is a replay, and when it is not, returns undo, which
// forgets the use again (for a message that our side failed to process, so
// that the worker may send it again).
func (s *Server) useSignature(ctx context.Context, signature, workerID string, msg signedMsg) (replayed bool, undo func(), err error) {
	key := replayKey(signature)
	first, err := s.store.SetOnce(ctx, key, replayTTL)
	if err != nil {
		return false, nil, err
	}
	if !first && msg.kind == msgResult {
		attempt, err := s.retryAttempt(ctx, workerID, msg)
		if err != nil {
			return false, nil, err
		}
		if attempt > 0 {
			key += "#" + strconv.Itoa(attempt)
			if first, err = s.store.SetOnce(ctx, key, replayTTL); err != nil {
				return false, nil, err
			}
		}
	}
	if !first {
		return true, nil, nil
	}
	return false, func() { _ = s.store.DeleteValue(context.WithoutCancel(ctx), key) }, nil
}

// retryAttempt returns the attempt of the task a repeated result reports
// on when that task is running on the sender at a retry (attempt 2 or
// later), and 0 otherwise. Only then may a repeated result be new: a
// result ends the attempt it is applied to, so a task still running at its
// first attempt has not had a result applied yet.
func (s *Server) retryAttempt(ctx context.Context, workerID string, msg signedMsg) (int, error) {
	if msg.jobID == "" || msg.taskID == "" {
		return 0, nil
	}
	j, err := s.store.LoadJob(ctx, msg.jobID, msg.taskID) // the header and this task only
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	run := j.Tasks[msg.taskID]
	if j.Status.Terminal() || run == nil || run.State != store.TaskRunning || run.WorkerID != workerID || run.Attempt < 2 {
		return 0, nil
	}
	return run.Attempt, nil
}
