package protocol

// Error codes a worker reports in TaskError.Code.
const (
	ErrTransient         = "TRANSIENT_ERROR"
	ErrPermanent         = "PERMANENT_ERROR"
	ErrInvalidInput      = "INVALID_INPUT_ERROR"
	ErrIntegrityMismatch = "INTEGRITY_MISMATCH_ERROR"
	ErrTimeout           = "TIMEOUT_ERROR"
	ErrLateResult        = "LATE_RESULT"
	ErrResourceExhausted = "RESOURCE_EXHAUSTED_ERROR"
	ErrLimitExceeded     = "LIMIT_EXCEEDED_ERROR"
	ErrContractViolation = "CONTRACT_VIOLATION_ERROR"
	ErrDependencyMissing = "DEPENDENCY_MISSING_ERROR"
	ErrDependency        = "DEPENDENCY_ERROR"
	ErrSecurity          = "SECURITY_ERROR"
	ErrInternal          = "INTERNAL_ERROR"
)

// ErrorClass groups error codes by what the orchestrator does with them.
type ErrorClass int

const (
	// ClassTransient failures are retried (with backoff, on another worker
	// when one is eligible) and then handled like permanent ones.
	ClassTransient ErrorClass = iota
	// ClassPermanent failures follow the task's failure transition, or
	// quarantine the job when there is none.
	ClassPermanent
	// ClassQuarantine failures (security errors and contract violations)
	// always quarantine the job.
	ClassQuarantine
)

// Classify maps an error code to its class. Unknown and empty codes are
// transient, as upstream.
func Classify(code string) ErrorClass {
	switch code {
	case ErrSecurity, ErrContractViolation:
		return ClassQuarantine
	case ErrPermanent, ErrDependency, ErrInvalidInput, ErrIntegrityMismatch:
		return ClassPermanent
	}
	return ClassTransient
}
