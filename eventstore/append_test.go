package eventstore

import (
	"sync"
	"testing"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

func TestAppendLoad(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	jobID := domain.NewJobID()
	other := domain.NewJobID()

	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.NotNil(t, evs)
	require.Empty(t, evs)

	created := createdEvent(jobID)
	seq1, err := s.Append(ctx, jobID, 0, created)
	require.NoError(t, err)
	// Another job's events in between must not count for this job.
	_, err = s.Append(ctx, other, 0, createdEvent(other))
	require.NoError(t, err)
	started := event(jobID, domain.Started{Attempt: 0, WorkerID: "w", Lease: "l"})
	progressed := event(jobID, domain.Progressed{Progress: 10})
	seq3, err := s.Append(ctx, jobID, seq1, started, progressed)
	require.NoError(t, err)
	require.Greater(t, seq3, seq1)

	evs, err = s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	want := []domain.Event{created, started, progressed}
	for i := range want {
		require.NotZero(t, evs[i].Sequence)
		want[i].Sequence = evs[i].Sequence
		require.Equal(t, want[i], evs[i])
	}
	require.Equal(t, seq1, evs[0].Sequence)
	require.Equal(t, seq3, evs[2].Sequence)
	require.Less(t, evs[0].Sequence, evs[1].Sequence)

	last, err := s.LastSequence(ctx)
	require.NoError(t, err)
	require.Equal(t, seq3, last)

	hist, err := s.History(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, hist, 3)
	require.Equal(t, created.ID, hist[0].ID)
	require.Equal(t, DefaultSource, hist[0].Source)
}

func TestLoadLongHistory(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, WithSource("urn:test"))
	ctx := testCtx(t)
	jobID := domain.NewJobID()
	// More events than one direct-get batch, so Load has to continue.
	n := directBatch + 20
	evs := make([]domain.Event, 0, n)
	evs = append(evs, createdEvent(jobID))
	for i := 1; i < n; i++ {
		evs = append(evs, event(jobID, domain.Progressed{Progress: i % 100}))
	}
	// Publish asynchronously-free but in one Append call: each is
	// conditional on the previous one.
	_, err := s.Append(ctx, jobID, 0, evs...)
	require.NoError(t, err)
	got, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, got, n)
	for i := range got {
		require.Equal(t, evs[i].ID, got[i].ID)
		if i > 0 {
			require.Greater(t, got[i].Sequence, got[i-1].Sequence)
		}
	}
	hist, err := s.History(ctx, jobID)
	require.NoError(t, err)
	require.Equal(t, "urn:test", hist[0].Source)
}

func TestAppendConflict(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	jobID := domain.NewJobID()

	seq1, err := s.Append(ctx, jobID, 0, createdEvent(jobID))
	require.NoError(t, err)

	// Someone else's create on the same job: expected 0 is stale.
	_, err = s.Append(ctx, jobID, 0, createdEvent(jobID))
	require.ErrorIs(t, err, domain.ErrConcurrency)

	// An expected sequence from the future is a conflict too.
	_, err = s.Append(ctx, jobID, seq1+5, event(jobID, domain.Progressed{Progress: 1}))
	require.ErrorIs(t, err, domain.ErrConcurrency)

	_, err = s.Append(ctx, jobID, seq1, event(jobID, domain.Started{Lease: "l"}))
	require.NoError(t, err)
	_, err = s.Append(ctx, jobID, seq1, event(jobID, domain.Started{Lease: "m"}))
	require.ErrorIs(t, err, domain.ErrConcurrency)

	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, evs, 2)
}

func TestAppendConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a, b := openStore(t, srv), openStore(t, srv)
	ctx := testCtx(t)
	jobID := domain.NewJobID()
	seq, err := a.Append(ctx, jobID, 0, createdEvent(jobID))
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			_, errs[i] = st.Append(ctx, jobID, seq, event(jobID, domain.Progressed{Progress: i}))
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, domain.ErrConcurrency)
	}
	require.Equal(t, 1, wins)
}

func TestAppendDuplicate(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	jobID := domain.NewJobID()

	created := createdEvent(jobID)
	seq1, err := s.Append(ctx, jobID, 0, created)
	require.NoError(t, err)
	started := event(jobID, domain.Started{Lease: "l"})
	seq2, err := s.Append(ctx, jobID, seq1, started)
	require.NoError(t, err)

	t.Run("duplicate ack with the right expected sequence", func(t *testing.T) {
		got, err := s.Append(ctx, jobID, seq1, started)
		require.NoError(t, err)
		require.Equal(t, seq2, got)
	})
	t.Run("lost ack retried with a stale expected sequence", func(t *testing.T) {
		// The server checks the expected sequence before the duplicate
		// window and answers "wrong last sequence" (10071); Append finds
		// its own event at the head of the job and reports success.
		got, err := s.Append(ctx, jobID, seq1, started)
		require.NoError(t, err)
		require.Equal(t, seq2, got)
		got, err = s.Append(ctx, jobID, 0, started)
		require.NoError(t, err)
		require.Equal(t, seq2, got)
	})
	t.Run("different event with a stale expected sequence", func(t *testing.T) {
		_, err := s.Append(ctx, jobID, seq1, event(jobID, domain.Started{Lease: "other"}))
		require.ErrorIs(t, err, domain.ErrConcurrency)
	})
	t.Run("older event of the job is not the head", func(t *testing.T) {
		_, err := s.Append(ctx, jobID, 0, created)
		require.ErrorIs(t, err, domain.ErrConcurrency)
	})

	evs, err := s.Load(ctx, jobID)
	require.NoError(t, err)
	require.Len(t, evs, 2, "nothing was stored twice")
}

func TestAppendRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	for _, id := range hostileIDs {
		_, err := s.Append(ctx, id, 0, createdEvent(id))
		require.ErrorIs(t, err, ErrInvalidJobID, "append %q", id)
		_, err = s.Load(ctx, id)
		require.ErrorIs(t, err, ErrInvalidJobID, "load %q", id)
		_, err = s.Execute(ctx, id, create(id))
		require.ErrorIs(t, err, ErrInvalidJobID, "execute %q", id)
		err = s.Enqueue(ctx, WorkItem{JobID: id, Pool: "standard", EventID: "e"})
		require.ErrorIs(t, err, ErrInvalidJobID, "enqueue %q", id)
	}
	jobID := domain.NewJobID()
	tests := []struct {
		name string
		ev   domain.Event
	}{
		{"other job", createdEvent(domain.NewJobID())},
		{"no id", func() domain.Event { e := createdEvent(jobID); e.ID = ""; return e }()},
		{"type mismatch", func() domain.Event { e := createdEvent(jobID); e.Type = domain.EventCompleted; return e }()},
		{"no data", func() domain.Event { e := createdEvent(jobID); e.Data = nil; return e }()},
	}
	for _, tt := range tests {
		_, err := s.Append(ctx, jobID, 0, tt.ev)
		require.ErrorIs(t, err, ErrInvalidEvent, tt.name)
	}
	last, err := s.LastSequence(ctx)
	require.NoError(t, err)
	require.Zero(t, last, "nothing reached the stream")
}
