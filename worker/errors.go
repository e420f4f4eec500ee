package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TaskError is a handler error with a protocol error code. Handlers return
// one (directly, wrapped, or through the constructors below) to choose how
// the orchestrator treats the failure; any other error is reported as
// TRANSIENT_ERROR with its text.
type TaskError struct {
	Code    string         // a protocol error code, e.g. protocol.ErrPermanent
	Message string         // reported message; empty means Err's text
	Details map[string]any // optional details sent with the error
	Err     error          // the underlying error, if any
}

func (e *TaskError) Error() string {
	msg := e.message()
	if msg == "" {
		return e.Code
	}
	return e.Code + ": " + msg
}

func (e *TaskError) Unwrap() error { return e.Err }

func (e *TaskError) message() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return ""
}

func newTaskError(code string, err error) error {
	if err == nil {
		err = errors.New(code)
	}
	return &TaskError{Code: code, Err: err}
}

// NewError returns an error reported with the given protocol error code.
func NewError(code string, err error) error { return newTaskError(code, err) }

// Errorf returns an error with a protocol error code and a formatted message.
// The %w verb works as in fmt.Errorf.
func Errorf(code, format string, args ...any) error {
	return newTaskError(code, fmt.Errorf(format, args...))
}

// Transient marks err as TRANSIENT_ERROR: the orchestrator retries the task.
// Plain errors are transient already.
func Transient(err error) error { return newTaskError(protocol.ErrTransient, err) }

// Permanent marks err as PERMANENT_ERROR: retrying will not help.
func Permanent(err error) error { return newTaskError(protocol.ErrPermanent, err) }

// InvalidInput marks err as INVALID_INPUT_ERROR: the task's params are wrong.
func InvalidInput(err error) error { return newTaskError(protocol.ErrInvalidInput, err) }

// IntegrityMismatch marks err as INTEGRITY_MISMATCH_ERROR (corrupt or
// inconsistent data).
func IntegrityMismatch(err error) error { return newTaskError(protocol.ErrIntegrityMismatch, err) }

// Security marks err as SECURITY_ERROR: the orchestrator quarantines the job.
func Security(err error) error { return newTaskError(protocol.ErrSecurity, err) }

// Dependency marks err as DEPENDENCY_ERROR (a service the task needs failed).
func Dependency(err error) error { return newTaskError(protocol.ErrDependency, err) }

// ResourceExhausted marks err as RESOURCE_EXHAUSTED_ERROR (out of memory,
// VRAM, disk...): transient, the task may go to another worker.
func ResourceExhausted(err error) error {
	return newTaskError(protocol.ErrResourceExhausted, err)
}

// Timeout marks err as TIMEOUT_ERROR.
func Timeout(err error) error { return newTaskError(protocol.ErrTimeout, err) }

// Internal marks err as INTERNAL_ERROR (a bug in the worker).
func Internal(err error) error { return newTaskError(protocol.ErrInternal, err) }

// ContractViolation marks err as CONTRACT_VIOLATION_ERROR.
func ContractViolation(err error) error {
	return newTaskError(protocol.ErrContractViolation, err)
}

// toWireError maps a handler error to the protocol error a result carries.
func toWireError(err error) *protocol.TaskError {
	var te *TaskError
	if errors.As(err, &te) && te.Code != "" {
		return &protocol.TaskError{Code: te.Code, Message: te.message(), Details: te.Details}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &protocol.TaskError{Code: protocol.ErrTimeout, Message: err.Error()}
	}
	return &protocol.TaskError{Code: protocol.ErrTransient, Message: err.Error()}
}
