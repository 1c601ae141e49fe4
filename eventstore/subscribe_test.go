package eventstore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

// appendJobs writes n created events on n jobs and returns them with their
// sequences.
func appendJobs(t *testing.T, s *Store, n int) []domain.Event {
	t.Helper()
	ctx := testCtx(t)
	out := make([]domain.Event, n)
	for i := range n {
		jobID := domain.NewJobID()
		ev := createdEvent(jobID)
		seq, err := s.Append(ctx, jobID, 0, ev)
		require.NoError(t, err)
		ev.Sequence = seq
		out[i] = ev
	}
	return out
}

type collector struct {
	mu  sync.Mutex
	evs []domain.Event
}

func (c *collector) add(_ context.Context, ev domain.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) snapshot() []domain.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]domain.Event(nil), c.evs...)
}

func TestSubscribeFromMiddleAndLive(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	before := appendJobs(t, s, 6)

	ctx, cancel := context.WithCancel(testCtx(t))
	var c collector
	done := make(chan error, 1)
	from := before[2].Sequence
	go func() { done <- s.Subscribe(ctx, from, c.add) }()

	eventually(t, func() bool { return len(c.snapshot()) == 4 }, "replay from the middle")
	after := appendJobs(t, s, 3)
	eventually(t, func() bool { return len(c.snapshot()) == 7 }, "live events")
	cancel()
	require.NoError(t, <-done, "a cancelled Subscribe returns nil")

	want := append(before[2:], after...)
	got := c.snapshot()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i], got[i])
	}
}

func TestSubscribeFromStartAndHandlerError(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	evs := appendJobs(t, s, 3)
	boom := errors.New("boom")
	var seen []uint64
	err := s.Subscribe(testCtx(t), 0, func(_ context.Context, ev domain.Event) error {
		seen = append(seen, ev.Sequence)
		if len(seen) == 2 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, []uint64{evs[0].Sequence, evs[1].Sequence}, seen)
}

func TestDispatch(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := openStore(t, srv)
	ctx := testCtx(t)

	// A job that is created, fails and is retried, plus one that only starts.
	jobID := domain.NewJobID()
	_, err := s.Execute(ctx, jobID, create(jobID))
	require.NoError(t, err)
	_, err = s.Execute(ctx, jobID, domain.Fail{ID: domain.NewID("cmd"), Error: domain.JobError{Code: domain.CodeWorkerLost, Message: "x"}})
	require.NoError(t, err)
	_, err = s.Execute(ctx, jobID, domain.Retry{ID: domain.NewID("cmd")})
	require.NoError(t, err)
	other, _ := startedJob(t, s)

	var mu sync.Mutex
	var got []domain.Event
	failOnce := true
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Dispatch(dctx, func(_ context.Context, ev domain.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if ev.JobID == other && failOnce {
				failOnce = false
				return errors.New("enqueue failed") // redelivered later
			}
			got = append(got, ev)
			return nil
		})
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	eventually(t, func() bool { return count() == 3 }, "created, retried and the redelivered created")
	cancel()
	require.NoError(t, <-done)

	mu.Lock()
	types := map[string][]domain.EventType{}
	for _, ev := range got {
		types[ev.JobID] = append(types[ev.JobID], ev.Type)
		require.NotZero(t, ev.Sequence)
	}
	mu.Unlock()
	require.Equal(t, []domain.EventType{domain.EventCreated, domain.EventRetried}, types[jobID])
	require.Equal(t, []domain.EventType{domain.EventCreated}, types[other])

	// Everything was acknowledged: a second dispatcher (another process)
	// sees nothing old, only new work.
	s2 := openStore(t, srv)
	info, err := s2.events.Consumer(ctx, dispatcherName)
	require.NoError(t, err)
	ci, err := info.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, ci.NumAckPending)
	require.Zero(t, ci.NumPending)

	newJob := domain.NewJobID()
	dctx2, cancel2 := context.WithCancel(ctx)
	var c collector
	done2 := make(chan error, 1)
	go func() { done2 <- s2.Dispatch(dctx2, c.add) }()
	_, err = s.Execute(ctx, newJob, create(newJob))
	require.NoError(t, err)
	eventually(t, func() bool { return len(c.snapshot()) == 1 }, "new created event")
	cancel2()
	require.NoError(t, <-done2)
	require.Equal(t, newJob, c.snapshot()[0].JobID)
}
