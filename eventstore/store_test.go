package eventstore

import (
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestOpenCreatesLayout(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv, WithDuplicateWindow(time.Minute))
	ctx := testCtx(t)

	info, err := s.events.Info(ctx)
	require.NoError(t, err)
	cfg := info.Config
	require.Equal(t, []string{"turbolane.jobs.>"}, cfg.Subjects)
	require.Equal(t, jetstream.LimitsPolicy, cfg.Retention)
	require.Equal(t, jetstream.FileStorage, cfg.Storage)
	require.Zero(t, cfg.MaxAge, "history never expires")
	require.True(t, cfg.AllowDirect)
	require.Equal(t, time.Minute, cfg.Duplicates)
	require.Equal(t, 1, cfg.Replicas)
	require.Equal(t, jetstream.DefaultPersistMode, cfg.PersistMode)

	winfo, err := s.work.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.WorkQueuePolicy, winfo.Config.Retention)
	require.Equal(t, []string{"turbolane.work.>"}, winfo.Config.Subjects)

	for _, b := range []string{filesBucket, keysBucket} {
		_, err := s.js.KeyValue(ctx, b)
		require.NoError(t, err, b)
	}

	// Opening again (another process, a restart) updates in place.
	again := openStore(t, srv)
	info, err = again.events.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, info.Config.Duplicates)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	nc := connect(t, srv)
	ctx := testCtx(t)
	for name, opt := range map[string]Option{
		"replicas 0":     WithReplicas(0),
		"replicas 7":     WithReplicas(7),
		"dup window":     WithDuplicateWindow(0),
		"empty source":   WithSource(""),
		"ack wait":       WithAckWait(time.Millisecond),
		"max ack":        WithPoolMaxAckPending(0),
		"cache negative": WithCacheSize(-1),
		"attempts":       WithMaxAttempts(0),
	} {
		_, err := Open(ctx, nc, opt)
		require.Error(t, err, name)
	}
	_, err := Open(ctx, nil)
	require.Error(t, err)
}

func TestPingHealth(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv)
	ctx := testCtx(t)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Health(ctx))

	require.NoError(t, s.js.DeleteStream(ctx, workStream))
	err := s.Health(ctx)
	require.ErrorIs(t, err, ErrStreamMissing)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Contains(t, err.Error(), workStream)
	require.NoError(t, s.Ping(ctx), "ping only needs the event stream")

	require.NoError(t, s.js.DeleteStream(ctx, eventsStream))
	require.ErrorIs(t, s.Ping(ctx), ErrStreamMissing)

	s.nc.Close()
	require.ErrorIs(t, s.Ping(ctx), ErrNotConnected)
	require.ErrorIs(t, s.Health(ctx), ErrNotConnected)
}

func TestHealthReportsFullStream(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv)
	ctx := testCtx(t)
	// An operator capped the event stream and it filled up.
	info, err := s.events.Info(ctx)
	require.NoError(t, err)
	cfg := info.Config
	cfg.MaxBytes = 64 << 10
	_, err = s.js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Health(ctx), "room left")
	for i := 0; ; i++ {
		jobID := domain.NewJobID()
		if _, err := s.Append(ctx, jobID, 0, createdEvent(jobID)); err != nil {
			break // the stream refuses new events (discard new)
		}
		require.Less(t, i, 1000)
	}
	err = s.Health(ctx)
	require.ErrorIs(t, err, ErrStorageFull)
	require.ErrorIs(t, err, domain.ErrUnavailable)
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jobID := domain.NewJobID()
	var seq uint64
	func() {
		srv, err := StartEmbedded(EmbeddedConfig{DataDir: dir}) // in-process only
		require.NoError(t, err)
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		nc, err := ConnectEmbedded(srv)
		require.NoError(t, err)
		defer nc.Close()
		s, err := Open(testCtx(t), nc)
		require.NoError(t, err)
		j, err := s.Execute(testCtx(t), jobID, create(jobID))
		require.NoError(t, err)
		seq = j.Version
		require.NoError(t, s.Files().Put(testCtx(t), domain.File{ID: domain.NewFileID(), UserID: "u"}))
	}()

	srv := startServerIn(t, dir)
	s := openStore(t, srv)
	evs, err := s.Load(testCtx(t), jobID)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, seq, evs[0].Sequence)
	files, err := s.Files().List(testCtx(t))
	require.NoError(t, err)
	require.Len(t, files, 1)
}

func TestEmbeddedConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]EmbeddedConfig{
		"no data dir":       {},
		"negative sync":     {DataDir: "x", SyncInterval: -time.Second},
		"bad listen":        {DataDir: "x", Listen: "localhost"},
		"bad port":          {DataDir: "x", Listen: "127.0.0.1:http"},
		"cluster half set":  {DataDir: "x", ClusterName: "c"},
		"cluster bad route": {DataDir: "x", ServerName: "n1", ClusterName: "c", ClusterListen: "127.0.0.1:0", Routes: []string{"::::"}},
	} {
		_, err := serverOptions(cfg)
		require.Error(t, err, name)
	}
	opts, err := serverOptions(EmbeddedConfig{DataDir: "/d", Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	require.True(t, opts.SyncAlways, "fsync before every ack by default")
	require.Equal(t, "/d", opts.StoreDir)
	require.Equal(t, -1, opts.Port)
	opts, err = serverOptions(EmbeddedConfig{DataDir: "/d", SyncInterval: time.Second, ServerName: "n1", ClusterName: "c", ClusterListen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6223"}})
	require.NoError(t, err)
	require.False(t, opts.SyncAlways)
	require.Equal(t, time.Second, opts.SyncInterval)
	require.True(t, opts.DontListen)
	require.Equal(t, "c", opts.Cluster.Name)
	require.Equal(t, 6222, opts.Cluster.Port)
	require.Len(t, opts.Routes, 1)
}

func TestHealthReportsFullServer(t *testing.T) {
	t.Parallel()
	// The server-wide JetStream limit is not visible in the account info;
	// Health learns about it from the refused write.
	srv, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", SyncInterval: time.Minute, MaxStore: 256 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	s := openStore(t, srv)
	ctx := testCtx(t)
	require.NoError(t, s.Health(ctx))
	var appendErr error
	for i := 0; appendErr == nil; i++ {
		require.Less(t, i, 10000)
		jobID := domain.NewJobID()
		_, appendErr = s.Append(ctx, jobID, 0, createdEvent(jobID))
	}
	require.ErrorIs(t, appendErr, ErrStorageFull)
	require.ErrorIs(t, appendErr, domain.ErrUnavailable, "a full store is a 503, not a 500")
	err = s.Health(ctx)
	require.ErrorIs(t, err, ErrStorageFull)
}
