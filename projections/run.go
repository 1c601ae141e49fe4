package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// Source delivers the job event stream in stream order, starting at stream
// sequence from (1 = everything), calling fn for each event until ctx is done
// or fn returns an error. eventstore.Store satisfies it.
type Source interface {
	Subscribe(ctx context.Context, from uint64, fn func(context.Context, domain.Event) error) error
}

// Run keeps the view up to date: it subscribes to src from Checkpoint()+1 and
// applies what arrives, in batches of up to WithBatchSize events per
// transaction. A batch is whatever has arrived by the time the previous one
// committed, so a lone live event is applied at once rather than waiting for
// company (read-your-writes waits on it). Run returns nil when ctx is
// cancelled or src ends, and an error when Apply fails or when src fails
// (unless WithResubscribe is set: then it subscribes again from the
// checkpoint after the delay). Events buffered but not yet committed are
// simply delivered again by the next subscription, because the checkpoint
// only moves with a commit. Start at most one Run per view at a time.
func (v *JobView) Run(ctx context.Context, src Source) error {
	for {
		if v.isClosed() {
			return ErrClosed
		}
		fromSource, err := v.follow(ctx, src)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			return nil
		case !fromSource || v.opts.resubscribe <= 0:
			return err
		}
		t := time.NewTimer(v.opts.resubscribe)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// follow runs one subscription. fromSource reports that the error came from
// src rather than from applying.
func (v *JobView) follow(ctx context.Context, src Source) (fromSource bool, err error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	events := make(chan domain.Event, v.opts.batchSize)
	applied := make(chan error, 1)
	go func() { applied <- v.applyLoop(runCtx, cancel, events) }()

	from := v.Checkpoint() + 1
	subErr := src.Subscribe(runCtx, from, func(fnCtx context.Context, ev domain.Event) error {
		select {
		case events <- ev:
			return nil
		case <-runCtx.Done():
			return context.Cause(runCtx)
		case <-fnCtx.Done():
			return fnCtx.Err()
		}
	})
	// Subscribe has returned, so fn is not called any more and the channel
	// can be closed: the loop applies what is left unless ctx is done.
	close(events)
	applyErr := <-applied
	switch {
	case applyErr != nil:
		return false, applyErr
	case ctx.Err() != nil:
		return false, nil
	case subErr != nil:
		return true, fmt.Errorf("follow job events from sequence %d: %w", from, subErr)
	}
	return false, nil
}

// applyLoop applies events from the channel until it is closed or ctx is
// done. On failure it cancels the run with its error so that the
// subscription stops too.
func (v *JobView) applyLoop(ctx context.Context, cancel context.CancelCauseFunc, events <-chan domain.Event) error {
	batch := make([]domain.Event, 0, v.opts.batchSize)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			batch = append(batch, ev)
		}
	fill:
		for len(batch) < v.opts.batchSize {
			select {
			case ev, ok := <-events:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		if err := v.Apply(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			err = fmt.Errorf("project job events: %w", err)
			cancel(err)
			return err
		}
	}
}
