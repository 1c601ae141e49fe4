package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestHealthReportsCorruptStream damages JOB_EVENTS' files between two runs
// of an embedded server, the way a bad disk or an operator would, and checks
// that Health (and CheckApplied, for a stream that came back empty) reports
// it instead of carrying on with a log that silently lost events.
func TestHealthReportsCorruptStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		damage  func(t *testing.T, msgs string)
		healthy bool // Health passes; only CheckApplied sees the loss
	}{
		{"first block removed", func(t *testing.T, msgs string) {
			blks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
			require.NotEmpty(t, blks)
			require.NoError(t, os.Remove(blks[0]))
		}, false},
		{"block truncated", func(t *testing.T, msgs string) {
			blks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
			require.NotEmpty(t, blks)
			st, err := os.Stat(blks[0])
			require.NoError(t, err)
			require.NoError(t, os.Truncate(blks[0], st.Size()/2))
		}, false},
		{"all message files removed", func(t *testing.T, msgs string) {
			require.NoError(t, os.RemoveAll(msgs))
		}, true},
		{"stream removed", func(t *testing.T, msgs string) {
			require.NoError(t, os.RemoveAll(filepath.Dir(msgs)))
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var applied uint64
			func() {
				srv, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
				require.NoError(t, err)
				defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
				nc, err := ConnectEmbedded(srv)
				require.NoError(t, err)
				defer nc.Close()
				s, err := Open(testCtx(t), nc)
				require.NoError(t, err)
				for range 20 {
					id := domain.NewJobID()
					j, err := s.Execute(testCtx(t), id, create(id))
					require.NoError(t, err)
					applied = j.Version
				}
				require.NoError(t, s.Health(testCtx(t)))
				require.NoError(t, s.CheckApplied(testCtx(t), applied))
			}()
			msgs, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", eventsStream, "msgs"))
			require.Len(t, msgs, 1, "JOB_EVENTS message directory")
			tc.damage(t, msgs[0])

			s := openStore(t, startServerIn(t, dir))
			err := s.Health(testCtx(t))
			if tc.healthy {
				require.NoError(t, err)
				err = s.CheckApplied(testCtx(t), applied)
			}
			require.ErrorIs(t, err, ErrStreamCorrupt)
			require.ErrorIs(t, err, domain.ErrUnavailable)
			t.Log(err)
		})
	}
}

// TestLeaderReads checks the leader fallbacks give the same answers as the
// direct gets they back up.
func TestLeaderReads(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	id := domain.NewJobID()
	_, err := s.Execute(ctx, id, create(id))
	require.NoError(t, err)
	filter, err := JobFilter(id)
	require.NoError(t, err)
	var direct, leader []uint64
	require.NoError(t, s.readAfter(ctx, filter, 0, func(sm storedMsg) error { direct = append(direct, sm.seq); return nil }))
	require.NoError(t, s.readLeader(ctx, filter, 0, func(sm storedMsg) error { leader = append(leader, sm.seq); return nil }))
	require.NotEmpty(t, direct)
	require.Equal(t, direct, leader)
	missing, err := JobFilter(domain.NewJobID())
	require.NoError(t, err)
	require.NoError(t, s.readLeader(ctx, missing, 0, func(storedMsg) error { t.Fatal("found a message of an unknown job"); return nil }))

	f := domain.File{ID: domain.NewFileID(), UserID: "u"}
	require.NoError(t, s.Files().Put(ctx, f))
	v, err := s.Files().leader.get(ctx, s.Files().kv, f.ID)
	require.NoError(t, err)
	require.Contains(t, string(v), f.ID)
	require.NoError(t, s.Files().Delete(ctx, f.ID))
	// The deleted key's last message is a delete marker: still not found.
	sm, ok, err := s.leaderGet(ctx, "KV_"+filesBucket, directGetRequest{LastFor: "$KV." + filesBucket + "." + f.ID})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "DEL", sm.op)
	_, err = s.Files().Get(ctx, f.ID)
	require.ErrorIs(t, err, domain.ErrFileNotFound)
}

// TestNoAnswerIsUnavailable: requests JetStream did not answer (a node of
// the cluster died, its streams are electing a leader) are 503, not 500.
func TestNoAnswerIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nats.ErrTimeout, nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
		fmt.Errorf("put: %w", jetstream.ErrNoStreamResponse)} {
		require.ErrorIs(t, noAnswer(err), domain.ErrUnavailable, "%v", err)
		require.ErrorIs(t, (&Store{}).published(err), domain.ErrUnavailable, "%v", err)
	}
	other := errors.New("boom")
	require.NotErrorIs(t, noAnswer(other), domain.ErrUnavailable)
	require.NoError(t, noAnswer(nil))
}

func TestHandBackDelay(t *testing.T) {
	t.Parallel()
	for delivered, want := range map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 50: 16 * time.Second} {
		require.Equal(t, want, handBackDelay(delivered), "delivery %d", delivered)
	}
}
