package eventstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

// Short enough for fast tests, long enough for heartbeats every third of it
// on a busy two-core machine.
const testAckWait = 1500 * time.Millisecond

func workItem(pool string) WorkItem {
	return WorkItem{JobID: domain.NewJobID(), Attempt: 0, Pool: pool, EventID: domain.NewID("evt")}
}

// consumeRun is a Consume running in the background.
type consumeRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop cancels Consume and returns its result.
func (r *consumeRun) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// wait returns Consume's result without cancelling it.
func (r *consumeRun) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func runConsume(t *testing.T, s *Store, pool string, slots int, fn func(context.Context, Delivery) error) *consumeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &consumeRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = s.Consume(ctx, pool, slots, fn)
	}()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func TestEnqueueConsume(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, WithAckWait(testAckWait))
	ctx := testCtx(t)
	items := []WorkItem{workItem("standard"), workItem("standard"), workItem("large")}
	for _, it := range items {
		require.NoError(t, s.Enqueue(ctx, it))
	}
	// The same event enqueued again (a redelivered dispatch) is stored once.
	require.NoError(t, s.Enqueue(ctx, items[0]))
	info, err := s.work.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, info.State.Msgs)

	got := make(chan Delivery, 10)
	run := runConsume(t, s, "standard", 2, func(_ context.Context, d Delivery) error {
		got <- d
		return nil
	})
	seen := map[string]WorkItem{}
	for range 2 {
		d := <-got
		require.EqualValues(t, 1, d.NumDelivered())
		seen[d.Item().JobID] = d.Item()
	}
	require.Equal(t, items[0], seen[items[0].JobID])
	require.Equal(t, items[1], seen[items[1].JobID])
	require.NoError(t, run.stop())
	// Acked items leave the work queue; the large pool's item stays for its pool.
	eventually(t, func() bool {
		info, err := s.work.Info(ctx)
		return err == nil && info.State.Msgs == 1
	}, "acked items removed")
}

func TestConsumeRespectsSlots(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, WithAckWait(testAckWait))
	ctx := testCtx(t)
	const n, slots = 7, 2
	for range n {
		require.NoError(t, s.Enqueue(ctx, workItem("standard")))
	}
	var running, peak, handled atomic.Int32
	release := make(chan struct{})
	run := runConsume(t, s, "standard", slots, func(ctx context.Context, d Delivery) error {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	})
	eventually(t, func() bool { return running.Load() == slots }, "slots filled")
	close(release)
	eventually(t, func() bool { return handled.Load() == n }, "all items handled")
	require.NoError(t, run.stop())
	require.LessOrEqual(t, peak.Load(), int32(slots))
}

func TestConsumeHandlerErrorRedelivers(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, WithAckWait(testAckWait))
	ctx := testCtx(t)
	it := workItem("standard")
	require.NoError(t, s.Enqueue(ctx, it))
	deliveries := make(chan uint64, 10)
	run := runConsume(t, s, "standard", 1, func(_ context.Context, d Delivery) error {
		deliveries <- d.NumDelivered()
		if d.NumDelivered() == 1 {
			return errors.New("engine crashed")
		}
		return nil
	})
	require.EqualValues(t, 1, <-deliveries)
	require.EqualValues(t, 2, <-deliveries)
	require.NoError(t, run.stop())
}

func TestConsumeRedeliversAfterWorkerDeath(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	dying := openStore(t, srv, WithAckWait(testAckWait))
	survivor := openStore(t, srv, WithAckWait(testAckWait))
	ctx := testCtx(t)
	it := workItem("standard")
	require.NoError(t, dying.Enqueue(ctx, it))

	picked := make(chan struct{})
	deadRun := runConsume(t, dying, "standard", 1, func(ctx context.Context, d Delivery) error {
		close(picked)
		<-ctx.Done() // hangs until Consume gives up on it
		return ctx.Err()
	})
	<-picked
	// The worker process dies: its connection goes away and with it the
	// heartbeats. Its Consume notices and returns an error.
	dying.nc.Close()
	err := deadRun.wait(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan Delivery, 1)
	run := runConsume(t, survivor, "standard", 1, func(_ context.Context, d Delivery) error {
		got <- d
		return nil
	})
	d := <-got
	require.Equal(t, it, d.Item())
	require.EqualValues(t, 2, d.NumDelivered(), "the same item, handed over after the ack wait")
	require.NoError(t, run.stop())
}

func TestConsumeHeartbeatsKeepLongHandler(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := openStore(t, srv, WithAckWait(testAckWait))
	b := openStore(t, srv, WithAckWait(testAckWait))
	ctx := testCtx(t)
	it := workItem("standard")
	require.NoError(t, a.Enqueue(ctx, it))

	var deliveries atomic.Int32
	finished := make(chan uint64, 2)
	handler := func(ctx context.Context, d Delivery) error {
		deliveries.Add(1)
		// Run for more than twice the ack wait; only heartbeats keep the
		// item from going to the other worker meanwhile.
		select {
		case <-time.After(2*testAckWait + testAckWait/2):
		case <-ctx.Done():
			return ctx.Err()
		}
		finished <- d.NumDelivered()
		return nil
	}
	runA := runConsume(t, a, "standard", 1, handler)
	runB := runConsume(t, b, "standard", 1, handler)
	require.EqualValues(t, 1, <-finished)

	eventually(t, func() bool {
		info, err := a.work.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, "item acked")
	cons, err := a.work.Consumer(ctx, "pool-standard")
	require.NoError(t, err)
	ci, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, ci.NumRedelivered, "never redelivered")
	require.NoError(t, runA.stop())
	require.NoError(t, runB.stop())
	require.EqualValues(t, 1, deliveries.Load())
}

func TestConsumeGracefulStopHandsBack(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := openStore(t, srv, WithAckWait(time.Minute))
	b := openStore(t, srv, WithAckWait(time.Minute))
	ctx := testCtx(t)
	it := workItem("large")
	require.NoError(t, a.Enqueue(ctx, it))

	picked := make(chan struct{})
	var handlerDone atomic.Bool
	runA := runConsume(t, a, "large", 1, func(ctx context.Context, d Delivery) error {
		close(picked)
		<-ctx.Done()
		handlerDone.Store(true)
		return ctx.Err()
	})
	<-picked
	require.NoError(t, runA.stop())
	require.True(t, handlerDone.Load(), "Consume waited for its handler")

	// Handed back at once, not after the minute-long ack wait.
	got := make(chan Delivery, 1)
	runB := runConsume(t, b, "large", 1, func(_ context.Context, d Delivery) error {
		got <- d
		return nil
	})
	select {
	case d := <-got:
		require.Equal(t, it, d.Item())
		require.EqualValues(t, 2, d.NumDelivered())
	case <-ctx.Done():
		t.Fatal("item was not handed back")
	}
	require.NoError(t, runB.stop())
}

func TestConsumeHandlerSettlesItself(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, WithAckWait(testAckWait))
	ctx := testCtx(t)
	require.NoError(t, s.Enqueue(ctx, workItem("standard")))
	done := make(chan struct{})
	run := runConsume(t, s, "standard", 1, func(_ context.Context, d Delivery) error {
		require.NoError(t, d.InProgress())
		require.NoError(t, d.Ack())
		require.NoError(t, d.Ack(), "a second ack is a no-op")
		close(done)
		return errors.New("ignored: already acked")
	})
	<-done
	eventually(t, func() bool {
		info, err := s.work.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, "acked by the handler")
	require.NoError(t, run.stop())
}

func TestWorkValidation(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	for _, pool := range []string{"", "*", ">", "a.b", "Standard", "st andard", string(make([]byte, 65))} {
		require.False(t, ValidPool(pool), pool)
		it := workItem(pool)
		require.ErrorIs(t, s.Enqueue(ctx, it), ErrInvalidPool, pool)
		require.ErrorIs(t, s.Consume(ctx, pool, 1, func(context.Context, Delivery) error { return nil }), ErrInvalidPool, pool)
	}
	for _, pool := range []string{"standard", "large", "gpu_2", "ocr-heavy"} {
		require.True(t, ValidPool(pool), pool)
	}
	it := workItem("standard")
	it.EventID = ""
	require.ErrorIs(t, s.Enqueue(ctx, it), domain.ErrValidation)
	require.ErrorIs(t, s.Consume(ctx, "standard", 0, func(context.Context, Delivery) error { return nil }), domain.ErrValidation)
}
