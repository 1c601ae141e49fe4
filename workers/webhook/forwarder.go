package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// Feed is the durable event feed; *eventstore.Store satisfies it.
type Feed interface {
	Follow(ctx context.Context, cfg eventstore.FollowConfig, fn func(context.Context, eventstore.FeedMessage) error) error
}

// ErrDelivery is returned (wrapped) when an event could not be delivered
// within one round of attempts; the event is then redelivered later.
var ErrDelivery = errors.New("webhook delivery failed")

// Forwarder posts job events to one endpoint. It is safe for concurrent use;
// Run is meant to be called once per process (several processes with the
// same consumer name share the events).
type Forwarder struct {
	url           string
	secret        []byte
	events        []domain.EventType
	durable       string
	client        *http.Client
	attempts      int
	backoff       time.Duration
	maxWait       time.Duration
	nakDelay      time.Duration
	log           *slog.Logger
	now           func() time.Time
	since         time.Time
	attemptsTotal *prometheus.CounterVec
}

// Option configures New.
type Option func(*Forwarder) error

// WithEvents forwards only these event types (default: all).
func WithEvents(types ...domain.EventType) Option {
	return func(f *Forwarder) error {
		for _, t := range types {
			switch t {
			case domain.EventCreated, domain.EventStarted, domain.EventProgressed, domain.EventCompleted,
				domain.EventFailed, domain.EventRetried, domain.EventDeleted:
			default:
				return fmt.Errorf("unknown event type %q", t)
			}
		}
		f.events = append([]domain.EventType(nil), types...)
		return nil
	}
}

// ParseEvents parses a comma-separated list such as "completed,failed";
// "" and "all" mean every event type (nil).
func ParseEvents(s string) ([]domain.EventType, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return nil, nil
	}
	var out []domain.EventType
	for _, p := range strings.Split(s, ",") {
		t := domain.EventType(strings.TrimSpace(p))
		if err := WithEvents(t)(&Forwarder{}); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// WithConsumerName names the durable JetStream consumer (default "webhook").
// Give each endpoint its own name.
func WithConsumerName(name string) Option {
	return func(f *Forwarder) error {
		if name == "" {
			return errors.New("empty consumer name")
		}
		f.durable = name
		return nil
	}
}

// WithHTTPClient sets the client (default: 10 s timeout per request).
func WithHTTPClient(c *http.Client) Option {
	return func(f *Forwarder) error {
		if c == nil {
			return errors.New("nil http client")
		}
		f.client = c
		return nil
	}
}

// WithRetry sets the attempts per delivery round (default 6) and the
// backoff: the wait before attempt n+1 is initial·2ⁿ⁻¹ capped at max, with
// full jitter over its upper half (defaults 500 ms and 30 s).
func WithRetry(attempts int, initial, max time.Duration) Option {
	return func(f *Forwarder) error {
		if attempts < 1 || initial <= 0 || max < initial {
			return fmt.Errorf("retry needs attempts ≥ 1 and 0 < initial ≤ max, got %d, %s, %s", attempts, initial, max)
		}
		f.attempts, f.backoff, f.maxWait = attempts, initial, max
		return nil
	}
}

// WithNakDelay sets how long a failed event waits in JetStream before the
// next round (default 1 min).
func WithNakDelay(d time.Duration) Option {
	return func(f *Forwarder) error {
		if d <= 0 {
			return fmt.Errorf("nak delay must be positive, got %s", d)
		}
		f.nakDelay = d
		return nil
	}
}

// WithLogger sets the logger for failed attempts and rounds.
func WithLogger(l *slog.Logger) Option {
	return func(f *Forwarder) error {
		if l == nil {
			return errors.New("nil logger")
		}
		f.log = l
		return nil
	}
}

// WithMetrics counts delivery attempts in reg as
// turbolane_webhook_attempts_total{result="delivered"|"failed"} and rounds
// that gave up (the event goes back to JetStream) as
// turbolane_webhook_attempts_total{result="requeued"}.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(f *Forwarder) error {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_webhook_attempts_total",
			Help: "Webhook delivery attempts by result (delivered, failed) and rounds handed back to JetStream (requeued).",
		}, []string{"result"})
		if reg == nil {
			return errors.New("nil registerer")
		}
		if err := reg.Register(c); err != nil {
			// A second forwarder on the same registry shares the counter.
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return fmt.Errorf("register webhook metrics: %w", err)
			}
			if c, ok = are.ExistingCollector.(*prometheus.CounterVec); !ok {
				return fmt.Errorf("register webhook metrics: %w", err)
			}
		}
		for _, r := range []string{"delivered", "failed", "requeued"} {
			c.WithLabelValues(r)
		}
		f.attemptsTotal = c
		return nil
	}
}

func (f *Forwarder) count(result string) {
	if f.attemptsTotal != nil {
		f.attemptsTotal.WithLabelValues(result).Inc()
	}
}

// New returns a forwarder to endpoint (http or https), signing with secret
// (required: an unsigned webhook cannot be trusted). The first time a
// consumer name is used, forwarding starts with the events stored after New
// was called; afterwards the durable consumer resumes where it stopped.
func New(endpoint string, secret []byte, opts ...Option) (*Forwarder, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new webhook forwarder: %q is not an http(s) URL", endpoint)
	}
	if len(secret) == 0 {
		return nil, errors.New("new webhook forwarder: empty secret")
	}
	f := &Forwarder{
		url: endpoint, secret: secret, durable: "webhook",
		client:   &http.Client{Timeout: 10 * time.Second},
		attempts: 6, backoff: 500 * time.Millisecond, maxWait: 30 * time.Second, nakDelay: time.Minute,
		log: slog.New(slog.DiscardHandler), now: time.Now, since: time.Now(),
	}
	for _, opt := range opts {
		if err := opt(f); err != nil {
			return nil, fmt.Errorf("new webhook forwarder: %w", err)
		}
	}
	return f, nil
}

// Run forwards events from feed until ctx is done (then it returns nil) or
// the feed fails.
func (f *Forwarder) Run(ctx context.Context, feed Feed) error {
	// The ack wait only has to outlast one HTTP attempt: Follow heart-beats
	// while a round of retries runs.
	err := feed.Follow(ctx, eventstore.FollowConfig{
		Durable: f.durable, Events: f.events, StartTime: f.since, NakDelay: f.nakDelay, AckWait: 30 * time.Second,
	}, f.deliver)
	if err != nil {
		return fmt.Errorf("forward job events to webhook: %w", err)
	}
	return nil
}

// deliver runs one round of attempts for one event.
func (f *Forwarder) deliver(ctx context.Context, msg eventstore.FeedMessage) error {
	var last error
	for attempt := 1; attempt <= f.attempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(f.wait(attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if last = f.post(ctx, msg); last == nil {
			f.count("delivered")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.count("failed")
		f.log.Warn("webhook attempt failed", "event", msg.ID, "subject", msg.Subject, "attempt", attempt, "delivery", msg.NumDelivered, "err", last)
	}
	f.count("requeued")
	f.log.Error("webhook delivery failed; will retry later", "event", msg.ID, "subject", msg.Subject,
		"attempts", f.attempts, "delivery", msg.NumDelivered, "retry_in", f.nakDelay, "err", last)
	return fmt.Errorf("%w: event %s after %d attempts: %w", ErrDelivery, msg.ID, f.attempts, last)
}

// wait is the backoff before the attempt after the n-th failure: full jitter
// over the upper half of min(initial·2ⁿ⁻¹, max), so retries of many events
// spread out but never come sooner than half the nominal delay.
func (f *Forwarder) wait(n int) time.Duration {
	d := f.maxWait
	if n < 32 {
		if e := f.backoff << (n - 1); e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (f *Forwarder) post(ctx context.Context, msg eventstore.FeedMessage) error {
	ts := f.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(msg.Data))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "turbolane-webhook/1")
	req.Header.Set(HeaderID, msg.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(f.secret, ts, msg.Data))
	if i := strings.LastIndexByte(msg.Subject, '.'); i >= 0 {
		req.Header.Set(HeaderEventType, eventstore.TypePrefix+msg.Subject[i+1:])
	}
	res, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", res.Status)
	}
	return nil
}
