package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store is the JetStream-backed event store, work queue and record store.
// It is safe for concurrent use.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	work   jetstream.Stream
	files  *Files
	keys   *Keys
	opts   options
	cache  *jobCache
	locks  keyedMutex
	// full holds the last "out of storage" publish error until a publish
	// succeeds again: a server-wide JetStream limit does not show in the
	// account info, only in refused writes.
	full atomic.Pointer[string]
}

type options struct {
	replicas        int
	duplicateWindow time.Duration
	source          string
	ackWait         time.Duration
	maxAckPending   int
	cacheSize       int
	maxAttempts     int
}

// Option configures Open. Options validate their input and make Open fail
// with a descriptive error.
type Option func(*options) error

// WithReplicas sets the replica count of every stream and bucket (1 for a
// single server, 3 in a cluster). Default 1.
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("replicas must be between 1 and 5, got %d", n)
		}
		o.replicas = n
		return nil
	}
}

// WithDuplicateWindow sets how long JetStream remembers Nats-Msg-Ids for
// de-duplication. Default 2 minutes.
func WithDuplicateWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("duplicate window must be at least 1s, got %s", d)
		}
		o.duplicateWindow = d
		return nil
	}
}

// WithSource sets the CloudEvents source attribute. Default "turbolane".
func WithSource(src string) Option {
	return func(o *options) error {
		if src == "" {
			return errors.New("cloudevents source must not be empty")
		}
		o.source = src
		return nil
	}
}

// WithAckWait sets how long a work item stays with a consumer that stops
// heart-beating before JetStream hands it to another. Consume heart-beats
// every third of it. Default 30s.
func WithAckWait(d time.Duration) Option {
	return func(o *options) error {
		if d < 300*time.Millisecond {
			return fmt.Errorf("ack wait must be at least 300ms, got %s", d)
		}
		o.ackWait = d
		return nil
	}
}

// WithPoolMaxAckPending caps the unacknowledged work items of one pool across
// every worker process sharing its durable consumer. Each process limits
// itself to its own slots. Default 1024.
func WithPoolMaxAckPending(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("pool max ack pending must be positive, got %d", n)
		}
		o.maxAckPending = n
		return nil
	}
}

// WithCacheSize sets how many folded job states Execute keeps in memory;
// 0 disables the cache. Default 10000.
func WithCacheSize(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("cache size must not be negative, got %d", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithMaxAttempts bounds how often Execute re-decides after a concurrent
// update. Default 20.
func WithMaxAttempts(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("max attempts must be positive, got %d", n)
		}
		o.maxAttempts = n
		return nil
	}
}

// Open connects to JetStream on nc and creates or updates the streams and
// buckets. The caller keeps ownership of nc.
func Open(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	if nc == nil {
		return nil, errors.New("open event store: nil nats connection")
	}
	o := options{
		replicas:        1,
		duplicateWindow: 2 * time.Minute,
		source:          DefaultSource,
		ackWait:         30 * time.Second,
		maxAckPending:   1024,
		cacheSize:       10000,
		maxAttempts:     20,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open event store: %w", err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open event store: create jetstream context: %w", err)
	}
	s := &Store{nc: nc, js: js, opts: o, cache: newJobCache(o.cacheSize)}

	s.events, err = retryOpen(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        eventsStream,
			Description: "Turbo Lane job events (CloudEvents 1.0); the audit trail, never expires",
			Subjects:    []string{jobsAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.replicas,
			Duplicates:  o.duplicateWindow,
			AllowDirect: true,
			Discard:     jetstream.DiscardNew,
			PersistMode: jetstream.DefaultPersistMode,
			// No MaxAge, MaxMsgs or MaxBytes: history is the audit trail.
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open event store: create stream %s: %w", eventsStream, err)
	}
	s.work, err = retryOpen(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        workStream,
			Description: "Turbo Lane work items, one per job attempt",
			Subjects:    []string{workAll},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.replicas,
			Duplicates:  o.duplicateWindow,
			PersistMode: jetstream.DefaultPersistMode,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open event store: create stream %s: %w", workStream, err)
	}
	fkv, err := retryOpen(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      filesBucket,
			Description: "Turbo Lane file records by file id",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    o.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open event store: create bucket %s: %w", filesBucket, err)
	}
	kkv, err := retryOpen(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      keysBucket,
			Description: "Turbo Lane API keys by sha256 hex of the key",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    o.replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open event store: create bucket %s: %w", keysBucket, err)
	}
	s.files = &Files{kv: fkv, leader: leaderKV{s, filesBucket}}
	s.keys = &Keys{kv: kkv, leader: leaderKV{s, keysBucket}}
	return s, nil
}

// openRetryFor bounds how long Open keeps retrying when the caller's
// context has no deadline.
const openRetryFor = 2 * time.Minute

// retryOpen runs one create-or-update of Open until it succeeds, fails for a
// reason a retry cannot fix, or the caller's context (or openRetryFor) ends.
// A JetStream cluster that is electing a leader, or that several replicas
// ask to create the same streams at once, answers such requests with a
// timeout or "temporarily unavailable"; each API replica and worker of a
// deployment starts at the same time, so Open must not give up on that.
func retryOpen[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openRetryFor)
		defer cancel()
	}
	wait := 250 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := fn(attempt)
		cancel()
		if err == nil || !transientOpenError(err) || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// isNoAnswer reports errors of a request that JetStream did not answer: the
// stream's leader was lost or is being elected (a node of the cluster died).
// They are a 503 (try again), not an internal error.
func isNoAnswer(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrConnectionClosed)
}

// noAnswer marks an unanswered request as domain.ErrUnavailable.
func noAnswer(err error) error {
	if err != nil && isNoAnswer(err) && !errors.Is(err, domain.ErrUnavailable) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}

func transientOpenError(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.As(err, &apiErr):
		// 10008: JetStream system temporarily unavailable (no meta leader).
		return apiErr.ErrorCode == 10008 || apiErr.Code == 503
	}
	return false
}

// Files returns the file records (KV bucket TURBOLANE_FILES).
func (s *Store) Files() *Files { return s.files }

// Keys returns the API keys (KV bucket TURBOLANE_API_KEYS).
func (s *Store) Keys() *Keys { return s.keys }

// LastSequence returns the last sequence of JOB_EVENTS (0 when empty).
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := s.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read last sequence of %s: %w", eventsStream, err)
	}
	return info.State.LastSeq, nil
}

// Ping reports whether the connection is up and JOB_EVENTS is readable. Its
// errors match domain.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return unavailable(ErrNotConnected, "connection status %s", s.nc.Status())
	}
	if _, err := s.js.Stream(ctx, eventsStream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return unavailable(ErrStreamMissing, "stream %s does not exist", eventsStream)
		}
		return fmt.Errorf("%w: ping stream %s: %w", domain.ErrUnavailable, eventsStream, err)
	}
	return nil
}

// storageHeadroom is the free space below which a stream counts as full: a
// stream refuses an event that does not fit whole, and events are a few
// hundred bytes to a few KiB.
const storageHeadroom = 8 << 10

// Health is a deeper Ping: both streams exist and neither they nor the
// account have run out of storage. Its errors match domain.ErrUnavailable
// and ErrStreamMissing, ErrStorageFull or ErrNotConnected.
func (s *Store) Health(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return unavailable(ErrNotConnected, "connection status %s", s.nc.Status())
	}
	for _, name := range []string{eventsStream, workStream} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return unavailable(ErrStreamMissing, "stream %s does not exist", name)
			}
			return fmt.Errorf("%w: read stream %s: %w", domain.ErrUnavailable, name, err)
		}
		info := st.CachedInfo()
		if name == eventsStream {
			if err := checkContiguous(info.State); err != nil {
				return err
			}
		}
		if max := info.Config.MaxBytes; max > 0 && info.State.Bytes+storageHeadroom > uint64(max) {
			return unavailable(ErrStorageFull, "stream %s holds %d of %d bytes", name, info.State.Bytes, max)
		}
	}
	if msg := s.full.Load(); msg != nil {
		return unavailable(ErrStorageFull, "the last write was refused: %s", *msg)
	}
	ai, err := s.js.AccountInfo(ctx)
	if err != nil {
		return fmt.Errorf("%w: read jetstream account info: %w", domain.ErrUnavailable, err)
	}
	if max := ai.Limits.MaxStore; max > 0 && ai.Store+storageHeadroom > uint64(max) {
		return unavailable(ErrStorageFull, "account uses %d of %d bytes of disk", ai.Store, max)
	}
	return nil
}

// checkContiguous reports a JOB_EVENTS stream with holes. Nothing ever
// deletes an event (no limits, no purges), so the stream must hold every
// sequence from 1 to its last; after its block files were damaged or removed
// nats-server starts anyway, with the lost sequences counted as deleted or
// with a first sequence above 1.
func checkContiguous(st jetstream.StreamState) error {
	if st.LastSeq == 0 {
		return nil
	}
	if st.FirstSeq != 1 || st.Msgs != st.LastSeq || st.NumDeleted > 0 {
		return unavailable(ErrStreamCorrupt,
			"stream %s lost events: it holds %d events for sequences %d..%d (%d missing); its files were damaged or removed, restore it from a backup (docs/operations.md)",
			eventsStream, st.Msgs, st.FirstSeq, st.LastSeq, st.LastSeq-st.Msgs)
	}
	return nil
}

// CheckApplied reports ErrStreamCorrupt when JOB_EVENTS ends before
// sequence applied, the checkpoint of a view built from it: the stream was
// recreated or lost its newest events, and the view would silently skip the
// events that reuse those sequences. Its errors match domain.ErrUnavailable.
func (s *Store) CheckApplied(ctx context.Context, applied uint64) error {
	last, err := s.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("%w: read stream %s: %w", domain.ErrUnavailable, eventsStream, err)
	}
	if last < applied {
		return unavailable(ErrStreamCorrupt,
			"stream %s ends at sequence %d but the read views applied up to %d: events were lost (stream recreated or its files removed); restore it from a backup or rebuild the views with `turbolane replay` (docs/operations.md)",
			eventsStream, last, applied)
	}
	return nil
}

// published records the outcome of a write and classifies its error: a
// JetStream that ran out of storage or cannot store is unavailable (503), not
// an internal error, and Health reports it until a write succeeds again.
func (s *Store) published(err error) error {
	if err == nil {
		if s.full.Load() != nil {
			s.full.Store(nil)
		}
		return nil
	}
	if isNoAnswer(err) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch code := apiErr.ErrorCode; {
	case code == 10023 || code == 10047 || code == 10028 ||
		code == 10077 && strings.Contains(apiErr.Description, "exceeded"):
		msg := apiErr.Description
		s.full.Store(&msg)
		return fmt.Errorf("%w: %w: %w", domain.ErrUnavailable, ErrStorageFull, err)
	case code == 10077 || apiErr.Code == 503:
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}
