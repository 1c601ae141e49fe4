package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WorkItem asks a pool to run one attempt of a job.
type WorkItem struct {
	JobID   string `json:"jobId"`
	Attempt int    `json:"attempt"`
	Pool    string `json:"pool"`
	// EventID is the created or retried event that asked for this attempt;
	// it makes Enqueue idempotent.
	EventID string `json:"eventId"`
}

// Delivery is one delivery of a work item to Consume's handler.
type Delivery interface {
	// Item returns the work item.
	Item() WorkItem
	// NumDelivered counts deliveries of this item, 1 the first time; a
	// high count means workers keep dying on it.
	NumDelivered() uint64
	// InProgress extends the item's lease; Consume already does this every
	// third of the ack wait while the handler runs.
	InProgress() error
	// Ack removes the item from the queue. Consume acks when the handler
	// returns nil and the handler has not settled the item itself.
	Ack() error
	// Nak hands the item back for redelivery after delay.
	Nak(delay time.Duration) error
}

// ValidPool reports whether name can be a pool: standard, large or another
// [a-z0-9_-]{1,64} name. Pool names become subject tokens, so nothing else
// is allowed.
func ValidPool(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkPool(name string) error {
	if !ValidPool(name) {
		return invalid(ErrInvalidPool, "%q is not a valid pool name", name)
	}
	return nil
}

// Enqueue puts it on the pool's queue. Enqueuing the same EventID twice
// within the duplicate window stores it once.
func (s *Store) Enqueue(ctx context.Context, it WorkItem) error {
	if err := checkJobID(it.JobID); err != nil {
		return fmt.Errorf("enqueue work item: %w", err)
	}
	if err := checkPool(it.Pool); err != nil {
		return fmt.Errorf("enqueue work item for job %s: %w", it.JobID, err)
	}
	if it.EventID == "" || it.Attempt < 0 {
		return fmt.Errorf("enqueue work item for job %s: %w", it.JobID, domain.Validationf("a work item needs an event id and a non-negative attempt"))
	}
	body, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("encode work item for job %s: %w", it.JobID, err)
	}
	m := &nats.Msg{Subject: workPrefix + it.Pool, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "work."+it.EventID)
	_, err = s.js.PublishMsg(ctx, m)
	if err = s.published(err); err != nil {
		return fmt.Errorf("enqueue work item for job %s attempt %d on pool %s: %w", it.JobID, it.Attempt, it.Pool, err)
	}
	return nil
}

// Consume runs fn for the pool's work items, at most slots at a time, through
// the shared durable consumer pool-<pool>: every process consuming a pool
// shares its queue. While fn runs, Consume heart-beats the item every third
// of the ack wait, so a live worker keeps it however long it takes and a dead
// one loses it to another worker after one ack wait. fn returning nil acks the
// item; an error hands it back after a short delay. When ctx is done, Consume
// stops fetching, cancels the context given to running handlers, waits for
// them, hands back what they did not finish and returns nil. It returns an
// error when the connection is closed or the consumer cannot be created.
func (s *Store) Consume(ctx context.Context, pool string, slots int, fn func(context.Context, Delivery) error) error {
	if err := checkPool(pool); err != nil {
		return fmt.Errorf("consume work: %w", err)
	}
	if slots < 1 {
		return fmt.Errorf("consume pool %s: %w", pool, domain.Validationf("slots must be positive, got %d", slots))
	}
	if fn == nil {
		return fmt.Errorf("consume pool %s: nil handler", pool)
	}
	// MaxAckPending bounds the pool across all processes; each process
	// bounds itself by pulling only as many items as it has free slots, so
	// nothing waits in a local buffer without heartbeats.
	cons, err := s.work.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "pool-" + pool,
		Description:   "workers of pool " + pool,
		FilterSubject: workPrefix + pool,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.opts.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: max(s.opts.maxAckPending, slots),
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consume pool %s: create consumer: %w", pool, err)
	}

	// A closed connection ends Consume even while every slot is busy: the
	// handlers cannot report anything any more and their items will go to
	// another worker after the ack wait.
	closed := s.nc.StatusChanged(nats.CLOSED)
	defer s.nc.RemoveStatusListener(closed)
	loopCtx, cancelLoop := context.WithCancel(ctx)
	defer cancelLoop()
	go func() {
		select {
		case <-closed:
			cancelLoop()
		case <-loopCtx.Done():
		}
	}()
	if s.nc.IsClosed() {
		cancelLoop()
	}

	runCtx, cancelRun := context.WithCancel(loopCtx)
	var wg sync.WaitGroup
	defer func() {
		cancelRun()
		wg.Wait()
	}()
	free := make(chan struct{}, slots)
	for range slots {
		free <- struct{}{}
	}
	for {
		select {
		case <-loopCtx.Done():
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume pool %s: %w", pool, nats.ErrConnectionClosed)
		case <-free:
		}
		n := 1
	more:
		for n < slots {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		got := 0
		err := fetch(loopCtx, cons, n, func(msg jetstream.Msg) {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- struct{}{} }()
				s.handleWork(runCtx, msg, fn)
			}()
		})
		for range n - got {
			free <- struct{}{}
		}
		if err := s.fetchFailed(loopCtx, err); err != nil {
			return fmt.Errorf("consume pool %s: %w", pool, err)
		}
	}
}

func (s *Store) handleWork(ctx context.Context, msg jetstream.Msg, fn func(context.Context, Delivery) error) {
	var it WorkItem
	if err := json.Unmarshal(msg.Data(), &it); err != nil {
		_ = msg.TermWithReason("undecodable work item: " + err.Error())
		return
	}
	d := &delivery{msg: msg, item: it}
	if meta, err := msg.Metadata(); err == nil {
		d.delivered = meta.NumDelivered
	}

	stop := make(chan struct{})
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		t := time.NewTicker(s.opts.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = d.InProgress()
			}
		}
	}()
	err := fn(ctx, d)
	close(stop)
	<-beating

	if err == nil {
		// Wait for the server to confirm the ack, so an item whose job is
		// done is not handed to another worker just because the ack was
		// lost or the process exits right after.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = d.settle(func() error { return msg.DoubleAck(actx) })
		return
	}
	delay := handBackDelay(d.delivered)
	if ctx.Err() != nil {
		delay = 0 // shutting down: hand it back now
	}
	_ = d.Nak(delay)
}

// handBackDelay is how long a handed-back item waits before its next
// delivery: nakDelay doubling per delivery, at most maxHandBackDelay. A
// worker hands items back when NATS does not answer (a node of the cluster
// died and its streams elect new leaders); without the backoff one item
// burnt its deliveries within seconds and failed with worker_lost.
func handBackDelay(delivered uint64) time.Duration {
	delay := nakDelay
	for i := uint64(1); i < delivered && delay < maxHandBackDelay; i++ {
		delay *= 2
	}
	return min(delay, maxHandBackDelay)
}

// maxHandBackDelay caps handBackDelay.
const maxHandBackDelay = 16 * time.Second

type delivery struct {
	msg       jetstream.Msg
	item      WorkItem
	delivered uint64

	mu      sync.Mutex
	settled bool
}

func (d *delivery) Item() WorkItem       { return d.item }
func (d *delivery) NumDelivered() uint64 { return d.delivered }

func (d *delivery) InProgress() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return nil
	}
	if err := d.msg.InProgress(); err != nil {
		return fmt.Errorf("extend lease of work item for job %s: %w", d.item.JobID, err)
	}
	return nil
}

func (d *delivery) Ack() error {
	return d.settle(d.msg.Ack)
}

func (d *delivery) Nak(delay time.Duration) error {
	return d.settle(func() error {
		if delay <= 0 {
			return d.msg.Nak()
		}
		return d.msg.NakWithDelay(delay)
	})
}

// settle runs an ack or nak once; later ones are no-ops.
func (d *delivery) settle(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return nil
	}
	if err := f(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return fmt.Errorf("settle work item for job %s: %w", d.item.JobID, err)
	}
	d.settled = true
	return nil
}
