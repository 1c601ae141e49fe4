package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// TestAnalyticsCountsRealEvents runs the consumer against a real in-process
// nats-server with events written by the event store: history first, then
// live events, including a retried job that failed once and then completed.
func TestAnalyticsCountsRealEvents(t *testing.T) {
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := eventstore.ConnectEmbedded(srv)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx := context.Background()
	store, err := eventstore.Open(ctx, nc)
	require.NoError(t, err)

	// History before the consumer starts.
	job(t, store, "image_conversion", 0.5, "")
	job(t, store, "image_conversion", 1.5, "")
	job(t, store, "image_conversion", 0, "corrupt_input")

	tally := NewTally()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(rctx, nc, tally, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	// Live events.
	job(t, store, "pdf_operations", 2, "")
	retried := job(t, store, "document_conversion", 0, "timeout")
	ev := func(typ domain.EventType, d domain.EventData) domain.Event {
		return domain.Event{ID: domain.NewID("cmd"), JobID: retried.id, Type: typ, Time: time.Now().UTC(), Data: d}
	}
	_, err = store.Append(ctx, retried.id, retried.seq,
		ev(domain.EventRetried, domain.Retried{RetryCount: 1}),
		ev(domain.EventStarted, domain.Started{Attempt: 1, WorkerID: "w", Lease: "lease_2"}),
		ev(domain.EventCompleted, domain.Completed{Lease: "lease_2", ProcessingTimeSeconds: 3}))
	require.NoError(t, err)

	want := map[string]Counts{
		"image_conversion":    {Completed: 2, Failed: 1, MeanProcessingSeconds: 1},
		"pdf_operations":      {Completed: 1, MeanProcessingSeconds: 2},
		"document_conversion": {Completed: 1, Failed: 1, MeanProcessingSeconds: 3},
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := tally.Snapshot()
		if equalCounts(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %+v, want %+v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	raw, err := json.Marshal(tally)
	require.NoError(t, err)
	require.JSONEq(t, `{"image_conversion":{"completed":2,"failed":1,"meanProcessingSeconds":1},
		"pdf_operations":{"completed":1,"failed":0,"meanProcessingSeconds":2},
		"document_conversion":{"completed":1,"failed":1,"meanProcessingSeconds":3}}`, string(raw))
	require.Contains(t, tally.String(), "image_conversion")
}

type stored struct {
	id  string
	seq uint64
}

// job stores created, started and completed (or failed with code).
func job(t *testing.T, store *eventstore.Store, typ domain.ProcessorType, seconds float64, code string) stored {
	t.Helper()
	id := domain.NewJobID()
	now := time.Now().UTC()
	ev := func(et domain.EventType, d domain.EventData) domain.Event {
		return domain.Event{ID: domain.NewID("cmd"), JobID: id, Type: et, Time: now, Data: d}
	}
	evs := []domain.Event{
		ev(domain.EventCreated, domain.Created{UserID: "u1", ProcessorType: typ, Params: map[string]any{}, Pool: "standard"}),
		ev(domain.EventStarted, domain.Started{WorkerID: "w", Lease: "lease_1"}),
	}
	if code == "" {
		evs = append(evs, ev(domain.EventCompleted, domain.Completed{Lease: "lease_1", ProcessingTimeSeconds: seconds}))
	} else {
		evs = append(evs, ev(domain.EventFailed, domain.Failed{Lease: "lease_1", Error: domain.JobError{Code: code, Message: "x"}, ProcessingTimeSeconds: seconds}))
	}
	seq, err := store.Append(context.Background(), id, 0, evs...)
	require.NoError(t, err)
	return stored{id: id, seq: seq}
}

func equalCounts(got, want map[string]Counts) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g := got[k]
		if g.Completed != w.Completed || g.Failed != w.Failed || g.MeanProcessingSeconds != w.MeanProcessingSeconds {
			return false
		}
	}
	return true
}

// TestTallyDropsRedeliveries: at-least-once delivery must not double count,
// and a message it cannot read is skipped, not retried forever.
func TestTallyDropsRedeliveries(t *testing.T) {
	tally := NewTally()
	id := domain.NewJobID()
	msg := func(seq string, et domain.EventType, d domain.EventData) *message.Message {
		b, err := json.Marshal(eventstore.CloudEventOf(domain.Event{ID: domain.NewID("cmd"), JobID: id, Type: et, Time: time.Now().UTC(), Data: d}))
		require.NoError(t, err)
		m := message.NewMessage("x", b)
		m.Metadata.Set(metaSequence, seq)
		return m
	}
	created := msg("1", domain.EventCreated, domain.Created{UserID: "u", ProcessorType: "ocr_processing", Params: map[string]any{}, Pool: "standard"})
	completed := msg("3", domain.EventCompleted, domain.Completed{ProcessingTimeSeconds: 4})
	for _, m := range []*message.Message{created, completed, completed, created, message.NewMessage("y", []byte("not json"))} {
		require.NoError(t, tally.Handle(m))
	}
	require.Equal(t, map[string]Counts{"ocr_processing": {Completed: 1, MeanProcessingSeconds: 4, totalSeconds: 4}}, tally.Snapshot())
}
