package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/convilyn/turbolane/eventstore"
)

// Pool runs a Runner on every work item of one pool, with a fixed number of
// concurrent slots. Several pools (and several processes) may serve the same
// pool name; the work queue hands each item to one of them at a time.
type Pool struct {
	name   string
	slots  int
	queue  Queue
	runner *Runner
}

// NewPool returns a pool named name (standard or large) with slots
// concurrent runs.
func NewPool(name string, slots int, queue Queue, runner *Runner) (*Pool, error) {
	switch {
	case name == "":
		return nil, errors.New("new pool: a name is required")
	case slots < 1:
		return nil, fmt.Errorf("new pool %s: slots must be at least 1, got %d", name, slots)
	case queue == nil || runner == nil:
		return nil, fmt.Errorf("new pool %s: queue and runner are required", name)
	}
	return &Pool{name: name, slots: slots, queue: queue, runner: runner}, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Run consumes the pool's work items until ctx is done. On cancellation,
// runs in flight are handed back (not failed) and Run returns nil once the
// consumer has stopped.
func (p *Pool) Run(ctx context.Context) error {
	err := p.queue.Consume(ctx, p.name, p.slots, func(ctx context.Context, d eventstore.Delivery) error {
		err := p.runner.Handle(ctx, d)
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrHandedBack) {
			// The item is nak'ed and comes back; say why, or a job that
			// ends in worker_lost leaves no trace of its cause. (The
			// runner logs hand-backs itself.)
			p.runner.log.Warn("work item handed back", "pool", p.name, "job", d.Item().JobID, "delivery", d.NumDelivered(), "err", err)
		}
		return err
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consume pool %s: %w", p.name, err)
	}
	return nil
}

// NewWorkerID returns host-pid-random: unique per process even when
// containers share a hostname.
func NewWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
