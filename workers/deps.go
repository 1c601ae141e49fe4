package workers

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// The interfaces below are the parts of the event store and blob storage the
// work side uses; *eventstore.Store, *eventstore.Files and blobstore.Store
// satisfy them. They are declared here, by their consumer, so the runner can
// be read (and tested) against exactly what it calls.

// JobStore loads and changes jobs. Execute returns the domain errors of
// domain.Decide (ErrJobNotFound, ErrLeaseLost, ErrStaleAttempt, …).
type JobStore interface {
	Load(ctx context.Context, jobID string) ([]domain.Event, error)
	Execute(ctx context.Context, jobID string, cmd domain.Command) (domain.Job, error)
}

// Queue is the work queue: the dispatcher's durable view of created and
// retried events, and the per-pool work streams.
type Queue interface {
	Dispatch(ctx context.Context, fn func(context.Context, domain.Event) error) error
	Enqueue(ctx context.Context, it eventstore.WorkItem) error
	Consume(ctx context.Context, pool string, slots int, fn func(context.Context, eventstore.Delivery) error) error
}

// FileRecords are the shared file records. Get returns domain.ErrFileNotFound
// for a missing record.
type FileRecords interface {
	Put(ctx context.Context, f domain.File) error
	Get(ctx context.Context, id string) (domain.File, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]domain.File, error)
}

// Blobs holds the bytes of files, keyed by file id.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Get(ctx context.Context, key string) (io.ReadCloser, blobstore.Info, error)
	Delete(ctx context.Context, key string) error
}

// Delivery is the part of a work-queue delivery the runner needs; the pool
// acknowledges or hands the item back from Handle's result.
type Delivery interface {
	Item() eventstore.WorkItem
	NumDelivered() uint64
}

var (
	_ Blobs    = blobstore.Store(nil)
	_ Delivery = eventstore.Delivery(nil)
)

// Observer receives the runner's metrics hooks. Implementations must be safe
// for concurrent use and must not block.
type Observer interface {
	// OnStart is called when a run has claimed its attempt.
	OnStart(pool string, t domain.ProcessorType)
	// OnFinish is called once per OnStart with how the run ended.
	OnFinish(pool string, t domain.ProcessorType, outcome Outcome, d time.Duration)
}

// Outcome is how a run ended.
type Outcome string

// Run outcomes.
const (
	OutcomeCompleted  Outcome = "completed"
	OutcomeFailed     Outcome = "failed"
	OutcomeHandedBack Outcome = "handed_back" // shutdown or a transient error: the item is redelivered
	OutcomeLost       Outcome = "lost"        // another run took the job over, or it was deleted
)

type nopObserver struct{}

func (nopObserver) OnStart(string, domain.ProcessorType)                          {}
func (nopObserver) OnFinish(string, domain.ProcessorType, Outcome, time.Duration) {}

func isNotFound(err error) bool { return errors.Is(err, blobstore.ErrNotFound) }

var (
	_ JobStore    = (*eventstore.Store)(nil)
	_ Queue       = (*eventstore.Store)(nil)
	_ FileRecords = (*eventstore.Files)(nil)
)
