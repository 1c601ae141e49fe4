package eventstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestFollowRejectsBadConfig(t *testing.T) {
	s := newTestStore(t)
	noop := func(context.Context, FeedMessage) error { return nil }
	for name, cfg := range map[string]FollowConfig{
		"no name":       {},
		"dotted name":   {Durable: "a.b"},
		"unknown event": {Durable: "x", Events: []domain.EventType{"exploded"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, s.Follow(testCtx(t), cfg, noop), domain.ErrValidation)
		})
	}
	require.Error(t, s.Follow(testCtx(t), FollowConfig{Durable: "x"}, nil))
}

// TestFollowRedeliversAfterError: a handler error hands the message back,
// it comes again after NakDelay with NumDelivered 2, later messages are not
// held back, and a second Follow with the same name resumes after the last
// acknowledged message.
func TestFollowRedeliversAfterError(t *testing.T) {
	s := newTestStore(t)
	ctx := testCtx(t)
	first := appendJobs(t, s, 1) // before the consumer: skipped (DeliverNew)

	var mu sync.Mutex
	got := map[string][]uint64{} // id → NumDelivered of each delivery
	var order []string
	follow := func(ctx context.Context) (stop func()) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- s.Follow(ctx, FollowConfig{Durable: "feed-test", Events: []domain.EventType{domain.EventCreated}, NakDelay: 100 * time.Millisecond},
				func(_ context.Context, m FeedMessage) error {
					mu.Lock()
					defer mu.Unlock()
					got[m.ID] = append(got[m.ID], m.NumDelivered)
					order = append(order, m.ID)
					if len(got[m.ID]) == 1 && len(order) == 1 {
						return context.DeadlineExceeded // fail the first delivery of the first message
					}
					return nil
				})
		}()
		return func() { cancel(); require.NoError(t, <-done) }
	}
	stop := follow(ctx)
	eventually(t, func() bool {
		_, err := s.events.Consumer(ctx, "feed-test")
		return err == nil
	}, "consumer created")
	evs := appendJobs(t, s, 3)
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3 && len(got[evs[0].ID]) == 2
	}, "all delivered, the first twice")
	stop()

	mu.Lock()
	require.Equal(t, []uint64{1, 2}, got[evs[0].ID])
	require.Equal(t, evs[1].ID, order[1], "a failing message does not hold back the next")
	require.NotContains(t, got, first[0].ID)
	mu.Unlock()

	more := appendJobs(t, s, 1)
	stop = follow(ctx)
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[more[0].ID]) == 1
	}, "resumed")
	stop()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 4, "nothing acknowledged came again")
}
