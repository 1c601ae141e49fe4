package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/convilyn/turbolane/domain"
)

// FollowConfig configures Follow.
type FollowConfig struct {
	// Durable names the consumer on JOB_EVENTS ([A-Za-z0-9_-], required).
	// It keeps its position on the server, so a restarted follower resumes
	// where the last one stopped and several processes with the same name
	// share the events.
	Durable string
	// Events limits the feed to these event types; empty means all.
	Events []domain.EventType
	// FromStart makes a new consumer deliver the whole history; StartTime
	// makes it start with the events stored at or after that time; by
	// default it starts with the events stored after it was created. Both
	// only shape a new consumer: an existing one keeps its position.
	FromStart bool
	StartTime time.Time
	// NakDelay is how long a message waits after the handler returned an
	// error before it is delivered again (default 30 s).
	NakDelay time.Duration
	// AckWait is how long the server waits for an acknowledgement before it
	// redelivers (default 30 s); Follow heart-beats every third of it while
	// the handler runs, so a slow handler keeps its message.
	AckWait time.Duration
}

// FeedMessage is one delivery of a stored job event.
type FeedMessage struct {
	// ID is the event id (the Nats-Msg-Id): the idempotency key.
	ID string
	// Subject is turbolane.jobs.<job_id>.<event>.
	Subject string
	// Data is the CloudEvents JSON document exactly as stored.
	Data []byte
	// Sequence is the stream sequence.
	Sequence uint64
	// NumDelivered counts deliveries of this message, 1 the first time.
	NumDelivered uint64
}

// Follow calls fn for the job events of the durable consumer cfg.Durable,
// one at a time in stream order, and acknowledges each when fn returns nil;
// when fn returns an error the message is delivered again after
// cfg.NakDelay (and later messages go on meanwhile). Delivery is at least
// once: fn must be idempotent on FeedMessage.ID. Follow blocks until ctx is
// done and then returns nil; it returns an error when the configuration is
// invalid, the consumer cannot be created or the connection is closed.
func (s *Store) Follow(ctx context.Context, cfg FollowConfig, fn func(context.Context, FeedMessage) error) error {
	if fn == nil {
		return errors.New("follow job events: nil handler")
	}
	if !validDurable(cfg.Durable) {
		return fmt.Errorf("follow job events: %w", domain.Validationf("consumer name %q must be 1-64 characters of A-Z, a-z, 0-9, _ and -", cfg.Durable))
	}
	filters := []string{jobsAll}
	if len(cfg.Events) > 0 {
		filters = filters[:0]
		for _, t := range cfg.Events {
			if !knownEventType(t) {
				return fmt.Errorf("follow job events: %w", domain.Validationf("unknown event type %q", t))
			}
			filters = append(filters, jobsPrefix+"*."+string(t))
		}
	}
	if cfg.NakDelay <= 0 {
		cfg.NakDelay = 30 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	cc := jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		Description:    "job event feed " + cfg.Durable,
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  1024,
	}
	switch {
	case cfg.FromStart:
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	case !cfg.StartTime.IsZero():
		start := cfg.StartTime.UTC()
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	if existing, err := s.events.Consumer(ctx, cfg.Durable); err == nil {
		// Where a consumer starts cannot change; keep its own.
		old := existing.CachedInfo().Config
		cc.DeliverPolicy, cc.OptStartTime, cc.OptStartSeq = old.DeliverPolicy, old.OptStartTime, old.OptStartSeq
	}
	cons, err := s.events.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("follow job events: create consumer %s: %w", cfg.Durable, err)
	}
	for ctx.Err() == nil {
		err := fetch(ctx, cons, dispatchBatch, func(msg jetstream.Msg) {
			if ctx.Err() != nil {
				_ = msg.Nak()
				return
			}
			s.handleFeed(ctx, cfg, msg, fn)
		})
		if err := s.fetchFailed(ctx, err); err != nil {
			return fmt.Errorf("follow job events with %s: %w", cfg.Durable, err)
		}
	}
	return nil
}

func (s *Store) handleFeed(ctx context.Context, cfg FollowConfig, msg jetstream.Msg, fn func(context.Context, FeedMessage) error) {
	fm := FeedMessage{ID: msg.Headers().Get(jetstream.MsgIDHeader), Subject: msg.Subject(), Data: msg.Data()}
	if meta, err := msg.Metadata(); err == nil {
		fm.Sequence, fm.NumDelivered = meta.Sequence.Stream, meta.NumDelivered
	}
	stop := make(chan struct{})
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		t := time.NewTicker(cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err := fn(ctx, fm)
	close(stop)
	<-beating
	if err != nil {
		delay := cfg.NakDelay
		if ctx.Err() != nil {
			delay = 0 // shutting down: hand it back now
		}
		_ = msg.NakWithDelay(delay)
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = msg.DoubleAck(actx)
}

func validDurable(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
