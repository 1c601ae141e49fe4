package eventstore

import (
	"errors"
	"fmt"

	"github.com/convilyn/turbolane/domain"
)

// Sentinel errors callers may branch on. Invalid input errors also match
// domain.ErrValidation; infrastructure problems also match
// domain.ErrUnavailable, so the HTTP layer maps them without knowing this
// package.
var (
	// ErrInvalidJobID is returned when a job id is not a well-formed job_… id.
	ErrInvalidJobID = errors.New("invalid job id")
	// ErrInvalidPool is returned for a pool name outside [a-z0-9_-]{1,64}.
	ErrInvalidPool = errors.New("invalid pool name")
	// ErrInvalidEvent is returned when an event cannot be appended as given.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrStreamMissing is reported by Ping and Health when a stream is gone.
	ErrStreamMissing = errors.New("stream missing")
	// ErrStorageFull is reported by Health when JetStream storage is exhausted.
	ErrStorageFull = errors.New("jetstream storage full")
	// ErrStreamCorrupt is reported by Health and CheckApplied when JOB_EVENTS
	// lost events: it has holes (events are never deleted, so a hole means
	// damaged or removed block files) or it ends before what a view applied.
	ErrStreamCorrupt = errors.New("event stream corrupt")
	// ErrNotConnected is reported by Ping and Health when NATS is unreachable.
	ErrNotConnected = errors.New("not connected to nats")
)

func invalid(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %w", domain.Validationf(format, args...), sentinel)
}

func unavailable(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", domain.ErrUnavailable, sentinel, fmt.Sprintf(format, args...))
}
