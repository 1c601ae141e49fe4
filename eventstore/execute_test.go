package eventstore

import (
	"fmt"
	"sync"
	"testing"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

// startedJob creates and starts a job through Execute and returns its lease.
func startedJob(t *testing.T, s *Store) (string, string) {
	t.Helper()
	ctx := testCtx(t)
	jobID := domain.NewJobID()
	j, err := s.Execute(ctx, jobID, create(jobID))
	require.NoError(t, err)
	require.Equal(t, domain.StatusQueued, j.Status)
	lease := domain.NewID("lease")
	j, err = s.Execute(ctx, jobID, domain.Start{ID: domain.NewID("cmd"), Attempt: 0, WorkerID: "w1", Lease: lease})
	require.NoError(t, err)
	require.Equal(t, domain.StatusProcessing, j.Status)
	return jobID, lease
}

func TestExecuteLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	jobID, lease := startedJob(t, s)

	j, err := s.Execute(ctx, jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 50, Message: "half"})
	require.NoError(t, err)
	require.Equal(t, 50, j.Progress)

	j, err = s.Execute(ctx, jobID, domain.Complete{ID: domain.NewID("cmd"), Lease: lease, ResultFiles: []domain.ResultFile{{FileID: "file_r", FileName: "r.webp"}}})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, j.Status)

	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, evs, 4)
	require.Equal(t, evs[3].Sequence, j.Version, "Version is the new sequence")
	require.Equal(t, domain.Fold(evs), j, "Execute's state is the fold of the stored history")
}

func TestExecuteUnknownJob(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	_, err := s.Execute(ctx, domain.NewJobID(), domain.Retry{ID: domain.NewID("cmd")})
	require.ErrorIs(t, err, domain.ErrJobNotFound)

	jobID := domain.NewJobID()
	_, err = s.Execute(ctx, jobID, create(jobID))
	require.NoError(t, err)
	_, err = s.Execute(ctx, jobID, create(jobID))
	require.ErrorIs(t, err, domain.ErrJobExists)
	// A create that names another job is refused before anything is written.
	_, err = s.Execute(ctx, domain.NewJobID(), create(jobID))
	require.ErrorIs(t, err, ErrInvalidJobID)
}

func TestExecuteForbidsSecondComplete(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv)
	ctx := testCtx(t)
	jobID, lease := startedJob(t, s)
	complete := domain.Complete{ID: domain.NewID("cmd"), Lease: lease}
	_, err := s.Execute(ctx, jobID, complete)
	require.NoError(t, err)

	_, err = s.Execute(ctx, jobID, domain.Complete{ID: domain.NewID("cmd"), Lease: lease})
	require.ErrorIs(t, err, domain.ErrAlreadyCompleted)
	// Neither a redelivered copy of the same command nor another process
	// (a Store with an empty cache) changes that.
	_, err = s.Execute(ctx, jobID, complete)
	require.ErrorIs(t, err, domain.ErrAlreadyCompleted)
	other := openStore(t, srv)
	_, err = other.Execute(ctx, jobID, domain.Complete{ID: domain.NewID("cmd"), Lease: lease})
	require.ErrorIs(t, err, domain.ErrAlreadyCompleted)

	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	completions := 0
	for _, ev := range evs {
		if ev.Type == domain.EventCompleted {
			completions++
		}
	}
	require.Equal(t, 1, completions)
}

func TestExecuteConcurrentProgress(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	tests := []struct {
		name   string
		stores []*Store
	}{
		// One Store serialises its own commands per job.
		{"one store", []*Store{openStore(t, srv)}},
		// Separate Stores (separate processes) conflict and re-decide.
		{"two stores", []*Store{openStore(t, srv), openStore(t, srv, WithCacheSize(0))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			jobID, lease := startedJob(t, tt.stores[0])
			const n = 10
			ids := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				ids[i] = fmt.Sprintf("%s_%02d", domain.NewID("cmd"), i)
				s := tt.stores[i%len(tt.stores)]
				wg.Go(func() {
					_, errs[i] = s.Execute(ctx, jobID, domain.ReportProgress{ID: ids[i], Lease: lease, Progress: i * 10})
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			evs, err := tt.stores[0].Load(ctx, jobID)
			require.NoError(t, err)
			require.Len(t, evs, 2+n)
			seen := map[string]bool{}
			for i, ev := range evs {
				if i > 0 {
					require.Greater(t, ev.Sequence, evs[i-1].Sequence, "history is in order")
				}
				if i >= 2 {
					require.Equal(t, domain.EventProgressed, ev.Type)
					seen[ev.ID] = true
				}
			}
			for _, id := range ids {
				require.True(t, seen[id], "progress %s is in the history", id)
			}
		})
	}
}

func TestExecuteStaleCache(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a, b := openStore(t, srv), openStore(t, srv)
	ctx := testCtx(t)
	jobID := domain.NewJobID()
	_, err := a.Execute(ctx, jobID, create(jobID))
	require.NoError(t, err)
	// a now caches the job as queued; b starts it behind a's back.
	lease := domain.NewID("lease")
	_, err = b.Execute(ctx, jobID, domain.Start{ID: domain.NewID("cmd"), WorkerID: "w", Lease: lease})
	require.NoError(t, err)

	// Progress is only allowed while processing: a must not refuse it on
	// its stale cache.
	j, err := a.Execute(ctx, jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 5})
	require.NoError(t, err)
	require.Equal(t, domain.StatusProcessing, j.Status)
	require.Equal(t, 5, j.Progress)

	// And a command appended by b conflicts with a's cached version, so a
	// re-decides on the fresh state.
	_, err = b.Execute(ctx, jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 6})
	require.NoError(t, err)
	j, err = a.Execute(ctx, jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 7})
	require.NoError(t, err)
	evs, err := a.Load(ctx, jobID)
	require.NoError(t, err)
	require.Equal(t, domain.Fold(evs), j)
}

func TestExecuteRetriedCommandIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv)
	ctx := testCtx(t)
	jobID, lease := startedJob(t, s)
	cmd := domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 30}
	first, err := s.Execute(ctx, jobID, cmd)
	require.NoError(t, err)
	// The caller did not see the answer and sends the command again, here
	// through another process.
	again, err := openStore(t, srv).Execute(ctx, jobID, cmd)
	require.NoError(t, err)
	require.Equal(t, first.Version, again.Version)
	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, evs, 3, "the retried command was stored once")
}
