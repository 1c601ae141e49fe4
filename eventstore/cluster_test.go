package eventstore

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// startCluster runs three embedded servers as one JetStream cluster. Every
// node needs its routes up front, so the cluster ports are picked first.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	var routes, listens []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		listens = append(listens, addr)
		routes = append(routes, "nats-route://"+addr)
	}
	servers := make([]*server.Server, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range servers {
		// Started together: each waits for its routes to form JetStream.
		wg.Go(func() {
			servers[i], errs[i] = StartEmbedded(EmbeddedConfig{
				DataDir:       t.TempDir(),
				Listen:        "127.0.0.1:0",
				ServerName:    fmt.Sprintf("n%d", i+1),
				ClusterName:   "turbolane-test",
				ClusterListen: listens[i],
				Routes:        routes,
			})
		})
	}
	wg.Wait()
	for i, srv := range servers {
		if srv != nil {
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		}
		require.NoError(t, errs[i])
	}
	return servers
}

// openClustered opens an R3 store, waiting out the cluster's first leader
// elections.
func openClustered(t *testing.T, srv *server.Server) *Store {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	var s *Store
	var lastErr error
	eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, lastErr = Open(ctx, nc, WithReplicas(3))
		return lastErr == nil
	}, "open R3 store")
	return s
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	servers := startCluster(t)
	a := openClustered(t, servers[0])
	b := openClustered(t, servers[2])
	ctx := testCtx(t)

	info, err := a.events.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.Replicas)

	jobID := domain.NewJobID()
	created := createdEvent(jobID)
	seq1, err := a.Append(ctx, jobID, 0, created)
	require.NoError(t, err)

	// Replicated streams report a failed expectation as 10164.
	_, err = b.Append(ctx, jobID, 0, createdEvent(jobID))
	require.ErrorIs(t, err, domain.ErrConcurrency)

	// A retried append is recognised whichever check answers first.
	got, err := b.Append(ctx, jobID, 0, created)
	require.NoError(t, err)
	require.Equal(t, seq1, got)
	got, err = b.Append(ctx, jobID, seq1, created)
	require.NoError(t, err)
	require.Equal(t, seq1, got)

	// Commands racing from two processes on two servers all land.
	lease := domain.NewID("lease")
	_, err = a.Execute(ctx, jobID, domain.Start{ID: domain.NewID("cmd"), WorkerID: "w", Lease: lease})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, errs[i] = s.Execute(ctx, jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: i})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	// Replicas may answer reads a moment behind the leader.
	eventually(t, func() bool {
		evs, err := b.Load(ctx, jobID)
		return err == nil && len(evs) == 2+len(errs)
	}, "history replicated")
	require.NoError(t, a.Health(ctx))
}
