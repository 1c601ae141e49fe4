package workers

import (
	"context"
	"errors"
	"fmt"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// Dispatcher turns created and retried events into work items on the pool
// the job was routed to. Enqueue de-duplicates on the event id, so
// redelivered events are harmless.
type Dispatcher struct {
	queue Queue
	jobs  JobStore
}

// NewDispatcher returns a dispatcher reading from and enqueueing to queue.
func NewDispatcher(queue Queue, jobs JobStore) (*Dispatcher, error) {
	if queue == nil || jobs == nil {
		return nil, errors.New("new dispatcher: queue and jobs are required")
	}
	return &Dispatcher{queue: queue, jobs: jobs}, nil
}

// Run dispatches until ctx is done or the subscription fails.
func (d *Dispatcher) Run(ctx context.Context) error {
	err := d.queue.Dispatch(ctx, d.Handle)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dispatch work items: %w", err)
	}
	return nil
}

// Handle enqueues the work item for one event; events other than created
// and retried are ignored. An error means the event is redelivered.
func (d *Dispatcher) Handle(ctx context.Context, ev domain.Event) error {
	switch data := ev.Data.(type) {
	case domain.Created:
		pool := data.Pool
		if pool == "" {
			pool = domain.PoolStandard
		}
		return d.enqueue(ctx, eventstore.WorkItem{JobID: ev.JobID, Attempt: 0, Pool: pool, EventID: ev.ID})
	case domain.Retried:
		// The pool was decided at creation; the retried event does not repeat it.
		evs, err := d.jobs.Load(ctx, ev.JobID)
		if err != nil {
			return fmt.Errorf("load job %s to dispatch its retry: %w", ev.JobID, err)
		}
		job := domain.Fold(evs)
		if !job.Exists() {
			return nil
		}
		pool := job.Pool
		if pool == "" {
			pool = domain.PoolStandard
		}
		return d.enqueue(ctx, eventstore.WorkItem{JobID: ev.JobID, Attempt: data.RetryCount, Pool: pool, EventID: ev.ID})
	}
	return nil
}

func (d *Dispatcher) enqueue(ctx context.Context, it eventstore.WorkItem) error {
	if err := d.queue.Enqueue(ctx, it); err != nil {
		return fmt.Errorf("enqueue attempt %d of job %s on %s: %w", it.Attempt, it.JobID, it.Pool, err)
	}
	return nil
}
