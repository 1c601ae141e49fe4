package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an Error by what the caller can do about it. The HTTP layer
// maps each kind to exactly one status code.
type Kind int

// Error kinds, in the order of the contract's error table.
const (
	KindInternal     Kind = iota // 500
	KindBadRequest               // 400: not JSON, wrong types
	KindUnauthorized             // 401: a token that is not valid
	KindForbidden                // 403: internal or admin endpoint without the right token
	KindNotFound                 // 404: missing, or owned by someone else
	KindConflict                 // 409: the state machine forbids the command
	KindTooLarge                 // 413: over the plan limit
	KindInvalid                  // 422: well-formed but invalid
	KindRateLimited              // 429
	KindUnavailable              // 503: a dependency is down
)

// Error is a domain error with a stable snake_case Code that clients branch on
// and a human Message. Two Errors match under errors.Is when their codes match,
// so a sentinel such as ErrJobNotFound matches a copy with a richer message.
type Error struct {
	Kind    Kind
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// WithMessage returns a copy of e with another message, keeping kind and code.
func (e *Error) WithMessage(format string, args ...any) *Error {
	return &Error{Kind: e.Kind, Code: e.Code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels callers branch on.
var (
	ErrInvalidJSON      = &Error{KindBadRequest, "invalid_json", "the request body is not valid JSON"}
	ErrUnauthorized     = &Error{KindUnauthorized, "unauthorized", "the bearer token is not valid"}
	ErrForbidden        = &Error{KindForbidden, "forbidden", "this endpoint needs a valid token"}
	ErrJobNotFound      = &Error{KindNotFound, "job_not_found", "job not found"}
	ErrFileNotFound     = &Error{KindNotFound, "file_not_found", "file not found"}
	ErrNoCompletedJobs  = &Error{KindNotFound, "no_completed_jobs", "none of the jobs is completed"}
	ErrNotFound         = &Error{KindNotFound, "not_found", "no such resource"}
	ErrJobNotFailed     = &Error{KindConflict, "job_not_failed", "only a failed job can be retried"}
	ErrJobNotProcessing = &Error{KindConflict, "job_not_processing", "the job is not processing"}
	ErrJobNotQueued     = &Error{KindConflict, "job_not_queued", "the job is not queued"}
	ErrJobExists        = &Error{KindConflict, "job_exists", "a job with this id already exists"}
	ErrAlreadyCompleted = &Error{KindConflict, "job_already_completed", "the job has already completed"}
	ErrLeaseLost        = &Error{KindConflict, "lease_lost", "another worker has taken this job over"}
	ErrStaleAttempt     = &Error{KindConflict, "stale_attempt", "the work item belongs to an earlier attempt"}
	ErrConcurrency      = &Error{KindConflict, "concurrent_update", "the job changed concurrently; try again"}
	ErrFileTooLarge     = &Error{KindTooLarge, "file_too_large", "the file is larger than your plan allows"}
	ErrValidation       = &Error{KindInvalid, "validation_error", "the request is not valid"}
	ErrUnsupported      = &Error{KindInvalid, "unsupported_format", "the format is not supported"}
	ErrRateLimited      = &Error{KindRateLimited, "rate_limited", "too many requests; slow down"}
	ErrUnavailable      = &Error{KindUnavailable, "unavailable", "a dependency is not reachable"}
	ErrInternal         = &Error{KindInternal, "internal_error", "internal error"}
)

// Validationf returns a validation_error with the given message.
func Validationf(format string, args ...any) *Error {
	return ErrValidation.WithMessage(format, args...)
}

// Unsupportedf returns an unsupported_format error with the given message.
func Unsupportedf(format string, args ...any) *Error {
	return ErrUnsupported.WithMessage(format, args...)
}

// Job failure codes: what a failed job's error.code says happened.
const (
	CodeUnsupportedFormat = "unsupported_format"
	CodeCorruptInput      = "corrupt_input"
	CodeInputTooLarge     = "input_too_large"
	CodeWrongPassword     = "wrong_password"
	CodeTimeout           = "timeout"
	CodeWorkerLost        = "worker_lost"
	CodeProcessorError    = "processor_error"
)

// JobError is the error of a failed job, as the API shows it.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ProcessingError is returned by engines: a failure with a job error code.
// Workers turn it into a Fail command; any other error becomes processor_error.
type ProcessingError struct {
	Code    string
	Message string
	Err     error
}

func (e *ProcessingError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *ProcessingError) Unwrap() error { return e.Err }

// Failf builds a ProcessingError with a code and message.
func Failf(code, format string, args ...any) *ProcessingError {
	return &ProcessingError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsJobError turns any engine error into the JobError a failed job carries.
func AsJobError(err error) JobError {
	var pe *ProcessingError
	if errors.As(err, &pe) {
		return JobError{Code: pe.Code, Message: pe.Message}
	}
	return JobError{Code: CodeProcessorError, Message: err.Error()}
}
