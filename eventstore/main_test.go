package eventstore

import (
	"context"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs a real nats-server with JetStream on a random port and a
// temporary data directory, fsyncing every write as production does.
func startServer(tb testing.TB) *server.Server {
	tb.Helper()
	return startServerIn(tb, tb.TempDir())
}

func startServerIn(tb testing.TB, dir string) *server.Server {
	tb.Helper()
	srv, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:0"})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// connect opens a client connection that the test can close early (to
// simulate a dead worker); closing twice is harmless.
func connect(tb testing.TB, srv *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(0))
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

func openStore(tb testing.TB, srv *server.Server, opts ...Option) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, connect(tb, srv), opts...)
	require.NoError(tb, err)
	return s
}

func newTestStore(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	return openStore(tb, startServer(tb), opts...)
}

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 123456789, time.UTC)

func create(jobID string) domain.Create {
	return domain.Create{
		ID:            domain.NewID("cmd"),
		JobID:         jobID,
		UserID:        "user_1",
		ProcessorType: "image_conversion",
		Params:        map[string]any{"file_id": "file_x", "output_format": "webp"},
		InputFiles:    []domain.InputFile{{FileID: "file_x", FileName: "a.jpg", MimeType: "image/jpeg", SizeBytes: 42}},
		Pool:          domain.PoolStandard,
	}
}

func event(jobID string, data domain.EventData) domain.Event {
	return domain.Event{
		ID:            domain.NewID("evt"),
		JobID:         jobID,
		Type:          data.EventType(),
		Time:          t0,
		SchemaVersion: domain.CurrentSchemaVersion,
		Data:          data,
	}
}

func createdEvent(jobID string) domain.Event {
	return event(jobID, domain.Created{UserID: "user_1", ProcessorType: "image_conversion", Params: map[string]any{"file_id": "file_x"}, Pool: domain.PoolStandard})
}

// eventually polls cond without asserting anything about how long it took.
func eventually(tb testing.TB, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition never held: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
