package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	dispatcherName  = "dispatcher"
	dispatchBatch   = 16
	pollInterval    = 5 * time.Second
	retryAfterError = 500 * time.Millisecond
	nakDelay        = time.Second
)

// Subscribe calls fn for every event of JOB_EVENTS from stream sequence from
// (0 or 1: from the beginning), in stream order, with Sequence set, and keeps
// following new events. It blocks until ctx is done (then it returns nil) or
// fn returns an error (then it returns that error). It uses an ordered
// ephemeral consumer, so nothing is stored on the server for it: projections
// keep their own checkpoint.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(context.Context, domain.Event) error) error {
	if fn == nil {
		return errors.New("subscribe to job events: nil handler")
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{jobsAll}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	cons, err := s.events.OrderedConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscribe to job events from %d: create ordered consumer: %w", from, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("subscribe to job events from %d: %w", from, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow job events: %w", err)
		}
		ev, err := decodeMsg(msg)
		if err != nil {
			return fmt.Errorf("follow job events: %w", err)
		}
		if err := fn(ctx, ev); err != nil {
			return err
		}
	}
}

func decodeMsg(msg jetstream.Msg) (domain.Event, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return domain.Event{}, fmt.Errorf("read metadata of %s: %w", msg.Subject(), err)
	}
	return decodeStored(storedMsg{seq: meta.Sequence.Stream, data: msg.Data()})
}

// Dispatch calls fn for every created and retried event, through the shared
// durable consumer "dispatcher": several processes may run it at once and
// each event goes to one of them. An event is acknowledged when fn returns
// nil and redelivered shortly after fn returns an error, so fn must be
// idempotent (Enqueue is). Dispatch blocks until ctx is done and then
// returns nil; it returns an error only when the connection is closed or the
// consumer cannot be created.
func (s *Store) Dispatch(ctx context.Context, fn func(context.Context, domain.Event) error) error {
	if fn == nil {
		return errors.New("dispatch job events: nil handler")
	}
	cons, err := s.events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        dispatcherName,
		Description:    "turns created and retried job events into work items",
		FilterSubjects: []string{jobsPrefix + "*." + string(domain.EventCreated), jobsPrefix + "*." + string(domain.EventRetried)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		MaxAckPending:  1024,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("dispatch job events: create consumer %s: %w", dispatcherName, err)
	}
	for ctx.Err() == nil {
		err := fetch(ctx, cons, dispatchBatch, func(msg jetstream.Msg) {
			ev, err := decodeMsg(msg)
			if err != nil {
				// It will never decode; retrying would block nothing but
				// would loop forever.
				_ = msg.TermWithReason(err.Error())
				return
			}
			if err := fn(ctx, ev); err != nil {
				_ = msg.NakWithDelay(nakDelay)
				return
			}
			_ = msg.Ack()
		})
		if err := s.fetchFailed(ctx, err); err != nil {
			return fmt.Errorf("dispatch job events: %w", err)
		}
	}
	return nil
}

// fetch pulls up to n messages, waiting at most pollInterval, and hands each
// to handle in order.
func fetch(ctx context.Context, cons jetstream.Consumer, n int, handle func(jetstream.Msg)) error {
	pollCtx, cancel := context.WithTimeout(ctx, pollInterval)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(pollCtx))
	if err != nil {
		return err
	}
	for msg := range batch.Messages() {
		handle(msg)
	}
	return batch.Error()
}

// fetchFailed decides what a fetch error means: nothing for a poll that
// simply ended, a pause for a transient problem (reconnecting, leader
// election), and the end for a closed connection.
func (s *Store) fetchFailed(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return nil
	}
	if s.nc.IsClosed() || errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("fetch: %w", nats.ErrConnectionClosed)
	}
	t := time.NewTimer(retryAfterError)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}
