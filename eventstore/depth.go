package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// QueueDepth reports a pool's queue: waiting is the work items no worker has
// claimed yet (the consumer pool-<pool>'s NumPending), running the items
// delivered and not yet acknowledged (NumAckPending). Before any worker has
// created the consumer, every stored item of the pool counts as waiting.
// It is safe for concurrent use.
func (s *Store) QueueDepth(ctx context.Context, pool string) (waiting, running uint64, err error) {
	if err := checkPool(pool); err != nil {
		return 0, 0, fmt.Errorf("read queue depth: %w", err)
	}
	cons, err := s.work.Consumer(ctx, "pool-"+pool)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		subject := workPrefix + pool
		info, err := s.work.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return 0, 0, fmt.Errorf("read queue depth of pool %s: read stream %s: %w", pool, workStream, err)
		}
		return info.State.Subjects[subject], 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read queue depth of pool %s: %w", pool, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read queue depth of pool %s: read consumer info: %w", pool, err)
	}
	return info.NumPending, uint64(info.NumAckPending), nil
}
