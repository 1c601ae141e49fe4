package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	natsURL := flag.String("nats-url", envOr("NATS_URL", nats.DefaultURL), "NATS server of the Turbo Lane deployment")
	addr := flag.String("addr", "", "serve the counts as JSON at http://ADDR/counts (empty: do not serve)")
	every := flag.Duration("print-every", 10*time.Second, "print the counts this often (0: only at exit)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	nc, err := nats.Connect(*natsURL, nats.Name("turbolane-analytics-example"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "analytics: connect to NATS %s: %v\n", *natsURL, err)
		os.Exit(1)
	}
	defer nc.Close()

	tally := NewTally()
	if *addr != "" {
		l, err := net.Listen("tcp", *addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "analytics: listen on %s: %v\n", *addr, err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(tally)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
	}
	if *every > 0 {
		go func() {
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					fmt.Print(tally)
				}
			}
		}()
	}
	if err := Run(ctx, nc, tally, logger); err != nil {
		fmt.Fprintf(os.Stderr, "analytics: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(tally)
}

// feedTopic is the watermill topic of the handler; the resource initializer
// below maps it to JOB_EVENTS and the subjects the tally needs.
const feedTopic = "turbolane.jobs"

// Run consumes created, completed and failed events into tally until ctx is
// done. Each run replays the whole history first through its own ephemeral
// consumer (the counts live in memory, so they are rebuilt from the log
// rather than resumed), then follows new events.
func Run(ctx context.Context, nc *nats.Conn, tally *Tally, logger *slog.Logger) error {
	wlog := watermill.NewSlogLogger(logger)
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:                nc,
		Logger:              wlog,
		AckWaitTimeout:      30 * time.Second,
		ResourceInitializer: jobEventsConsumer,
		Unmarshaler:         cloudEventUnmarshaler{},
		// A handler error after the Retry middleware gave up: JetStream
		// redelivers after a growing delay instead of at once.
		NakDelay: wmjs.NewStaticDelay(5 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("create watermill subscriber: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return fmt.Errorf("create watermill router: %w", err)
	}
	router.AddMiddleware(
		middleware.Recoverer, // a panicking handler nacks the message instead of killing the process
		middleware.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, Multiplier: 2, Logger: wlog}.Middleware,
	)
	router.AddConsumerHandler("tally", feedTopic, sub, tally.Handle)
	if err := router.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run watermill router: %w", err)
	}
	return sub.Close()
}

// jobEventsConsumer creates an ephemeral pull consumer on JOB_EVENTS that
// delivers the whole history of created, completed and failed events and is
// removed by the server a minute after this process goes away.
func jobEventsConsumer(ctx context.Context, js jetstream.JetStream, _ string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
	stream, err := js.Stream(ctx, "JOB_EVENTS")
	if err != nil {
		return nil, nil, fmt.Errorf("find stream JOB_EVENTS: %w", err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description: "turbolane analytics example",
		FilterSubjects: []string{
			"turbolane.jobs.*.created", "turbolane.jobs.*.completed", "turbolane.jobs.*.failed",
		},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		MaxAckPending:     1, // one at a time keeps each job's events in stream order
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create consumer on JOB_EVENTS: %w", err)
	}
	name := cons.CachedInfo().Name
	return cons, func(ctx context.Context, l watermill.LoggerAdapter) {
		if err := stream.DeleteConsumer(context.WithoutCancel(ctx), name); err != nil {
			l.Debug("delete consumer", watermill.LogFields{"err": err})
		}
	}, nil
}

// cloudEventUnmarshaler turns a JOB_EVENTS message into a watermill message
// whose UUID is the event id (the Nats-Msg-Id) and whose metadata carries
// the subject and the stream sequence. It never fails: the handler decides
// what to do with a payload it cannot read.
type cloudEventUnmarshaler struct{}

func (cloudEventUnmarshaler) Unmarshal(msg jetstream.Msg) (*message.Message, error) {
	m := message.NewMessage(msg.Headers().Get(jetstream.MsgIDHeader), msg.Data())
	m.Metadata.Set("subject", msg.Subject())
	if meta, err := msg.Metadata(); err == nil {
		m.Metadata.Set(metaSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	return m, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
