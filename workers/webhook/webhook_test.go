package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/workers/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"cmd_1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	good := webhook.Sign(secret, now.Unix(), body)
	for _, tc := range []struct {
		name, sig, ts string
		body          []byte
		secret        []byte
		at            time.Time
		want          error
	}{
		{"valid", good, ts, body, secret, now, nil},
		{"valid among rotated", "v1=00ff, " + good, ts, body, secret, now, nil},
		{"tampered body", good, ts, []byte(`{"id":"cmd_2"}`), secret, now, webhook.ErrBadSignature},
		{"wrong secret", good, ts, body, []byte("other"), now, webhook.ErrBadSignature},
		{"other timestamp", good, "1800000001", body, secret, now, webhook.ErrBadSignature},
		{"no timestamp", good, "", body, secret, now, webhook.ErrBadSignature},
		{"stale", good, ts, body, secret, now.Add(10 * time.Minute), webhook.ErrStale},
		{"from the future", good, ts, body, secret, now.Add(-10 * time.Minute), webhook.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.sig, tc.ts, tc.body, 5*time.Minute, tc.at)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, f := range map[string]func() error{
		"no scheme":    func() error { _, err := webhook.New("example.com/hook", []byte("k")); return err },
		"ftp":          func() error { _, err := webhook.New("ftp://example.com", []byte("k")); return err },
		"no secret":    func() error { _, err := webhook.New("http://example.com", nil); return err },
		"unknown type": func() error { _, err := webhook.ParseEvents("completed,exploded"); return err },
		"bad retry": func() error {
			_, err := webhook.New("http://example.com", []byte("k"), webhook.WithRetry(0, time.Second, time.Second))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { require.Error(t, f()) })
	}
	types, err := webhook.ParseEvents(" completed , failed")
	require.NoError(t, err)
	require.Equal(t, []domain.EventType{domain.EventCompleted, domain.EventFailed}, types)
	types, err = webhook.ParseEvents("all")
	require.NoError(t, err)
	require.Nil(t, types)
}

// sink is an endpoint that refuses the first `refuse` requests (503) and
// records the accepted events by id, checking each signature.
type sink struct {
	mu     sync.Mutex
	refuse int
	calls  int
	seen   map[string]int
	types  map[string]string
	errs   []string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := webhook.Verify([]byte("secret"), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Minute, time.Now()); err != nil {
		s.errs = append(s.errs, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.refuse > 0 {
		s.refuse--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ce eventstore.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.ID != r.Header.Get(webhook.HeaderID) || r.Header.Get("Content-Type") != webhook.ContentType || r.Header.Get(webhook.HeaderEventType) != ce.Type {
		s.errs = append(s.errs, "bad delivery: "+string(body))
	}
	s.seen[ce.ID]++
	s.types[ce.ID] = ce.Type
	w.WriteHeader(http.StatusOK)
}

func (s *sink) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// TestForwarderRetriesAndResumes runs the forwarder on a real JetStream:
// the endpoint refuses more requests than one round of attempts, so an event
// goes back to JetStream and comes again; then the forwarder stops, events
// are stored meanwhile, and a new forwarder with the same consumer name
// delivers them. Every event arrives exactly once per id, and only the
// types asked for.
func TestForwarderRetriesAndResumes(t *testing.T) {
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := eventstore.ConnectEmbedded(srv)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Drain(); waitClosed(nc) })
	ctx := context.Background()
	store, err := eventstore.Open(ctx, nc)
	require.NoError(t, err)

	end := &sink{refuse: 5, seen: map[string]int{}, types: map[string]string{}}
	hs := httptest.NewServer(end)
	t.Cleanup(hs.Close)

	reg := prometheus.NewRegistry()
	start := func() (stop func()) {
		f, err := webhook.New(hs.URL, []byte("secret"), webhook.WithMetrics(reg),
			webhook.WithEvents(domain.EventCreated, domain.EventCompleted),
			webhook.WithConsumerName("hook-test"),
			webhook.WithRetry(3, 10*time.Millisecond, 40*time.Millisecond),
			webhook.WithNakDelay(200*time.Millisecond))
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.Run(rctx, store) }()
		return func() {
			cancel()
			require.NoError(t, <-done)
		}
	}
	// A new consumer starts with the events stored after New: an event
	// appended right after start (before the consumer exists) still counts.
	stop := start()
	jobs := appendJobs(t, store, 3)
	waitUntil(t, func() bool { return end.accepted() == 6 })
	stop()

	more := appendJobs(t, store, 2)
	stop = start()
	waitUntil(t, func() bool { return end.accepted() == 10 })
	stop()

	end.mu.Lock()
	defer end.mu.Unlock()
	require.Empty(t, end.errs)
	for _, ids := range [][]string{jobs, more} {
		for _, id := range ids {
			require.Equal(t, 1, end.seen[id], "event %s", id)
		}
	}
	for id, typ := range end.types {
		require.Contains(t, []string{eventstore.TypePrefix + "created", eventstore.TypePrefix + "completed"}, typ, id)
	}
	require.Equal(t, 15, end.calls, "5 refused + 10 accepted")

	counts := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, 10.0, counts["delivered"])
	require.Equal(t, 5.0, counts["failed"])
	require.GreaterOrEqual(t, counts["requeued"], 1.0, "3 attempts per round, 5 refusals")
}

// appendJobs stores created, started, completed for n jobs and returns the
// ids of the created and completed events.
func appendJobs(t *testing.T, store *eventstore.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for range n {
		job := domain.NewJobID()
		now := time.Now().UTC()
		evs := []domain.Event{
			{ID: domain.NewID("cmd"), JobID: job, Type: domain.EventCreated, Time: now, Data: domain.Created{UserID: "u1", ProcessorType: "image_conversion", Params: map[string]any{}, Pool: "standard"}},
			{ID: domain.NewID("cmd"), JobID: job, Type: domain.EventStarted, Time: now, Data: domain.Started{WorkerID: "w", Lease: "lease_1"}},
			{ID: domain.NewID("cmd"), JobID: job, Type: domain.EventCompleted, Time: now, Data: domain.Completed{Lease: "lease_1", ProcessingTimeSeconds: 0.1}},
		}
		_, err := store.Append(ctx, job, 0, evs...)
		require.NoError(t, err)
		ids = append(ids, evs[0].ID, evs[2].ID)
	}
	return ids
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitClosed(nc *nats.Conn) {
	for i := 0; i < 100 && !nc.IsClosed(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}
