package workers_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/image"
)

func params() map[string]any { return map[string]any{"output_format": "png"} }

func TestJobIsDispatchedProcessedAndCompleted(t *testing.T) {
	e := newEnv(t)
	eng, err := image.New()
	require.NoError(t, err)
	reg := workers.Registry{}
	reg.Register(eng, eng.Types()...)

	disp, err := workers.NewDispatcher(e.store, e.store)
	require.NoError(t, err)
	background(t, disp.Run)
	runners := map[string]*workers.Runner{}
	for _, name := range []string{domain.PoolStandard, domain.PoolLarge} {
		runners[name] = e.runner(t, e.store, reg, workers.WithPoolName(name))
		pool, err := workers.NewPool(name, 2, e.store, runners[name])
		require.NoError(t, err)
		background(t, pool.Run)
	}

	in := e.upload(t, "cat.jpg", "image/jpeg", photo(t, 320, 200))
	id := e.create(t, domain.ImageConversion, map[string]any{"output_format": "webp", "quality": 80}, domain.PoolLarge, in)
	j := e.waitStatus(t, id, domain.StatusCompleted)
	require.Equal(t, runners[domain.PoolLarge].WorkerID(), j.WorkerID, "routed to the pool chosen at creation")

	require.Len(t, j.ResultFiles, 1)
	rf := j.ResultFiles[0]
	require.Equal(t, "cat.webp", rf.FileName)
	require.Equal(t, "image/webp", rf.MimeType)
	rc, info, err := e.blobs.Get(context.Background(), rf.FileID)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.Equal(t, rf.SizeBytes, info.Size)
	require.Equal(t, vips.ImageTypeWEBP, vips.DetermineImageType(b))

	rec, err := e.store.Files().Get(context.Background(), rf.FileID)
	require.NoError(t, err)
	require.Equal(t, domain.FileResult, rec.Kind)
	require.Equal(t, id, rec.JobID)
	require.Equal(t, e.user, rec.UserID)
	require.True(t, rec.Confirmed)
	require.True(t, rec.ExpiresAt.After(rec.CreatedAt), "results expire after the retention")

	// The runner extends the upload right after the completion is appended.
	require.Eventually(t, func() bool {
		up, err := e.store.Files().Get(context.Background(), in.FileID)
		require.NoError(t, err)
		return !up.ExpiresAt.IsZero()
	}, 10*time.Second, 10*time.Millisecond, "the used upload now expires with the results")

	evs := e.events(t, id)
	require.Equal(t, 1, count(evs, domain.EventStarted))
	require.Equal(t, 1, count(evs, domain.EventCompleted))
	require.Empty(t, domain.Verify(evs))
}

func TestRetriedJobIsDispatchedAgainOnItsPool(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	reg := registry(engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		if runs.Add(1) == 1 {
			return nil, domain.Failf(domain.CodeCorruptInput, "first attempt breaks")
		}
		return copyEngine(ctx, in)
	}), domain.ImageConversion)
	disp, err := workers.NewDispatcher(e.store, e.store)
	require.NoError(t, err)
	background(t, disp.Run)
	pool, err := workers.NewPool(domain.PoolLarge, 1, e.store, e.runner(t, e.store, reg))
	require.NoError(t, err)
	background(t, pool.Run)

	id := e.create(t, domain.ImageConversion, params(), domain.PoolLarge, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	j := e.waitStatus(t, id, domain.StatusFailed)
	require.Equal(t, domain.CodeCorruptInput, j.Error.Code)

	_, err = e.store.Execute(context.Background(), id, domain.Retry{ID: domain.NewID("cmd")})
	require.NoError(t, err)
	j = e.waitStatus(t, id, domain.StatusCompleted)
	require.Equal(t, 1, j.RetryCount)
	require.Len(t, j.ResultFiles, 1)
}

func TestEngineGetsNormalizedParams(t *testing.T) {
	e := newEnv(t)
	var got map[string]any
	r := e.runner(t, e.store, registry(engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		got = in.Params
		return copyEngine(ctx, in)
	}), domain.ImageConversion))
	id := e.create(t, domain.ImageConversion, map[string]any{"output_format": "png", "width": 64}, domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	require.Equal(t, 64, got["width"], "ints stay ints after the trip through JetStream")
	require.Equal(t, 85, got["quality"])
}

func TestDuplicateWorkItemCompletesOnce(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, e.store, registry(engineFunc(copyEngine), domain.ImageConversion))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	it := item(id, 0)
	require.NoError(t, r.Handle(context.Background(), it))
	require.NoError(t, r.Handle(context.Background(), it), "a duplicate is acknowledged and dropped")
	it.n = 2
	require.NoError(t, r.Handle(context.Background(), it))

	evs := e.events(t, id)
	require.Equal(t, 1, count(evs, domain.EventStarted))
	require.Equal(t, 1, count(evs, domain.EventCompleted))
	require.Len(t, e.resultRecords(t, id), 1)
	left, err := os.ReadDir(e.workRoot)
	require.NoError(t, err)
	require.Empty(t, left, "every run removes its work dir")
}

func TestStaleAttemptIsDropped(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, e.store, registry(engineFunc(copyEngine), domain.ImageConversion))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	ctx := context.Background()
	_, err := e.store.Execute(ctx, id, domain.Fail{ID: domain.NewID("cmd"), Error: domain.JobError{Code: domain.CodeProcessorError, Message: "x"}})
	require.NoError(t, err)
	_, err = e.store.Execute(ctx, id, domain.Retry{ID: domain.NewID("cmd")})
	require.NoError(t, err)

	require.NoError(t, r.Handle(ctx, item(id, 0)), "the first attempt's item arrives late")
	require.Equal(t, domain.StatusQueued, e.job(t, id).Status)
	require.NoError(t, r.Handle(ctx, item(id, 1)))
	require.Equal(t, domain.StatusCompleted, e.job(t, id).Status)
}

func TestConcurrentRunsOfOneItemCompleteOnce(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	reg := registry(g, domain.ImageConversion)
	a := e.runner(t, e.store, reg, workers.WithWorkerID("worker-a"))
	b := e.runner(t, e.store, reg, workers.WithWorkerID("worker-b"))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))

	done := make(chan error, 2)
	go func() { done <- a.Handle(context.Background(), item(id, 0)) }()
	recv(t, g.started)
	// The item comes back while a still works (a missed heartbeat): b takes over.
	go func() { done <- b.Handle(context.Background(), delivery{item: item(id, 0).item, n: 2}) }()
	recv(t, g.started)
	close(g.release)
	require.NoError(t, recv(t, done))
	require.NoError(t, recv(t, done))

	j := e.job(t, id)
	require.Equal(t, domain.StatusCompleted, j.Status)
	require.Equal(t, "worker-b", j.WorkerID)
	evs := e.events(t, id)
	require.Equal(t, 2, count(evs, domain.EventStarted))
	require.Equal(t, 1, count(evs, domain.EventCompleted))
	require.Empty(t, domain.Verify(evs))
	require.Len(t, e.resultRecords(t, id), 1, "the loser's results are discarded")
	require.Equal(t, 2, e.blobCount(t), "the input and one result")
}

func TestShutdownHandsBackAndAnotherRunTakesOver(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	r := e.runner(t, e.store, registry(g, domain.ImageConversion))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Handle(ctx, item(id, 0)) }()
	recv(t, g.started)
	cancel()
	err := recv(t, done)
	require.ErrorIs(t, err, workers.ErrHandedBack)
	require.Equal(t, domain.StatusProcessing, e.job(t, id).Status, "shutdown does not fail the job")
	require.Equal(t, 1, e.blobCount(t), "nothing uploaded")

	close(g.release)
	require.NoError(t, r.Handle(context.Background(), delivery{item: item(id, 0).item, n: 2}))
	j := e.job(t, id)
	require.Equal(t, domain.StatusCompleted, j.Status)
	require.Equal(t, 1, count(e.events(t, id), domain.EventCompleted))
}

func TestDeadWorkerIsTakenOverByAnotherPool(t *testing.T) {
	e := newEnv(t)
	// Every process opens its store before any consumer exists: Open updates
	// the streams, and nats-server v2.15.3 races (under -race) between a
	// stream update and a concurrent consumer creation.
	ncA, err := connectRaw(e)
	require.NoError(t, err)
	storeA := e.open(t, ncA)
	storeB := e.connect(t)

	disp, err := workers.NewDispatcher(e.store, e.store)
	require.NoError(t, err)
	background(t, disp.Run)

	// Worker A runs on its own connection and hangs inside the engine.
	g := newGate()
	poolA, err := workers.NewPool(domain.PoolStandard, 1, storeA, e.runner(t, storeA, registry(g, domain.ImageConversion), workers.WithWorkerID("worker-a")))
	require.NoError(t, err)
	// Its Run ends with "connection closed" when the process dies; that is
	// the point, so its error is not checked.
	stopA := background(t, func(ctx context.Context) error { _ = poolA.Run(ctx); return nil })

	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	recv(t, g.started)
	// A's process dies: no more heartbeats, no ack, no nak.
	ncA.Close()

	poolB, err := workers.NewPool(domain.PoolStandard, 1, storeB, e.runner(t, storeB, registry(engineFunc(copyEngine), domain.ImageConversion), workers.WithWorkerID("worker-b")))
	require.NoError(t, err)
	background(t, poolB.Run)

	j := e.waitStatus(t, id, domain.StatusCompleted)
	require.Equal(t, "worker-b", j.WorkerID)
	close(g.release) // let A's stuck goroutine finish; its connection is gone
	stopA()

	evs := e.events(t, id)
	require.Equal(t, 1, count(evs, domain.EventCompleted))
	var takeover bool
	for _, ev := range evs {
		if s, ok := ev.Data.(domain.Started); ok && s.Takeover {
			takeover = s.WorkerID == "worker-b"
		}
	}
	require.True(t, takeover, "b took the attempt over")
	require.Empty(t, domain.Verify(evs))
}

func TestTooManyDeliveriesFailAsWorkerLost(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, e.store, registry(engineFunc(copyEngine), domain.ImageConversion), workers.WithMaxDeliveries(3))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), delivery{item: item(id, 0).item, n: 4}))
	j := e.job(t, id)
	require.Equal(t, domain.StatusFailed, j.Status)
	require.Equal(t, domain.CodeWorkerLost, j.Error.Code)
}

func TestEngineErrorFailsTheJob(t *testing.T) {
	e := newEnv(t)
	eng, err := image.New()
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		engine workers.Engine
		data   []byte
		code   string
	}{
		{"processing error keeps its code", eng, []byte("this is not an image"), domain.CodeUnsupportedFormat},
		{"plain error is processor_error", engineFunc(func(context.Context, workers.Input) ([]workers.Output, error) {
			return nil, errors.New("segfault in the codec")
		}), []byte("x"), domain.CodeProcessorError},
		{"no output is processor_error", engineFunc(func(context.Context, workers.Input) ([]workers.Output, error) {
			return nil, nil
		}), []byte("x"), domain.CodeProcessorError},
		{"output outside the work dir", engineFunc(func(context.Context, workers.Input) ([]workers.Output, error) {
			return []workers.Output{{Path: "/etc/passwd", Name: "passwd"}}, nil
		}), []byte("x"), domain.CodeProcessorError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.runner(t, e.store, registry(tc.engine, domain.ImageConversion))
			id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", tc.data))
			require.NoError(t, r.Handle(context.Background(), item(id, 0)))
			j := e.job(t, id)
			require.Equal(t, domain.StatusFailed, j.Status)
			require.Equal(t, tc.code, j.Error.Code, j.Error.Message)
			require.Empty(t, e.resultRecords(t, id))
		})
	}
}

func TestMissingEngineFailsAsUnsupported(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, e.store, workers.Registry{})
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	require.Equal(t, domain.CodeUnsupportedFormat, e.job(t, id).Error.Code)
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	g := newGate() // never released: only the timeout ends it
	r := e.runner(t, e.store, registry(g, domain.ImageConversion), workers.WithProcessorTimeout(domain.ImageConversion, 50*time.Millisecond))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	j := e.job(t, id)
	require.Equal(t, domain.StatusFailed, j.Status)
	require.Equal(t, domain.CodeTimeout, j.Error.Code)
}

func TestJobDeletedMidRunLeavesNoResults(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	r := e.runner(t, e.store, registry(g, domain.ImageConversion))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	done := make(chan error, 1)
	go func() { done <- r.Handle(context.Background(), item(id, 0)) }()
	recv(t, g.started)
	_, err := e.store.Execute(context.Background(), id, domain.Delete{ID: domain.NewID("cmd")})
	require.NoError(t, err)
	close(g.release)
	require.NoError(t, recv(t, done))

	require.Zero(t, count(e.events(t, id), domain.EventCompleted))
	require.Empty(t, e.resultRecords(t, id))
	require.Equal(t, 1, e.blobCount(t), "only the input is left")
}

func TestProgressIsCoalesced(t *testing.T) {
	e := newEnv(t)
	chatty := engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		for i := 0; i <= 100; i++ {
			in.Progress(i, "step")
			in.Progress(i, "same percentage again")
			time.Sleep(time.Millisecond)
		}
		return copyEngine(ctx, in)
	})
	r := e.runner(t, e.store, registry(chatty, domain.ImageConversion), workers.WithProgressCoalescing(0, 5))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	evs := e.events(t, id)
	n := count(evs, domain.EventProgressed)
	require.GreaterOrEqual(t, n, 1)
	require.LessOrEqual(t, n, 5)
	last := -1
	for _, ev := range evs {
		if p, ok := ev.Data.(domain.Progressed); ok {
			require.Greater(t, p.Progress, last, "only changed percentages are sent")
			last = p.Progress
		}
	}
	require.Equal(t, domain.StatusCompleted, e.job(t, id).Status)
}

// A run that is done within the first coalescing interval writes no
// progress event, however often its engine reports.
func TestQuickRunWritesNoProgress(t *testing.T) {
	e := newEnv(t)
	chatty := engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		for i := 0; i <= 100; i += 10 {
			in.Progress(i, "step")
		}
		return copyEngine(ctx, in)
	})
	r := e.runner(t, e.store, registry(chatty, domain.ImageConversion), workers.WithProgressCoalescing(time.Hour, 5))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	evs := e.events(t, id)
	require.Zero(t, count(evs, domain.EventProgressed))
	require.Equal(t, domain.StatusCompleted, e.job(t, id).Status)
}

// A run that outlasts the first interval reports its progress.
func TestLongerRunReportsProgressAfterTheFirstInterval(t *testing.T) {
	e := newEnv(t)
	var id string
	slow := engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		in.Progress(40, "half way")
		for count(e.events(t, id), domain.EventProgressed) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return copyEngine(ctx, in)
	})
	r := e.runner(t, e.store, registry(slow, domain.ImageConversion), workers.WithProgressCoalescing(20*time.Millisecond, 5), workers.WithDefaultTimeout(time.Minute))
	id = e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	j := e.job(t, id)
	require.Equal(t, domain.StatusCompleted, j.Status, "the engine saw its progress recorded before the timeout")
	evs := e.events(t, id)
	require.Equal(t, 1, count(evs, domain.EventProgressed))
	for _, ev := range evs {
		if p, ok := ev.Data.(domain.Progressed); ok {
			require.Equal(t, 40, p.Progress)
			require.Equal(t, "half way", p.Message)
		}
	}
}

func TestLostLeaseStopsTheRun(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{})
	engine := engineFunc(func(ctx context.Context, in workers.Input) ([]workers.Output, error) {
		close(started)
		for i := 0; ; i = (i + 1) % 100 {
			in.Progress(i, "")
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	r := e.runner(t, e.store, registry(engine, domain.ImageConversion), workers.WithProgressCoalescing(0, 1000))
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	done := make(chan error, 1)
	go func() { done <- r.Handle(context.Background(), item(id, 0)) }()
	<-started
	_, err := e.store.Execute(context.Background(), id, domain.Start{ID: domain.NewID("cmd"), Attempt: 0, WorkerID: "other", Lease: "lease_other"})
	require.NoError(t, err)
	require.NoError(t, recv(t, done), "the run ends quietly once its lease is gone")
	j := e.job(t, id)
	require.Equal(t, domain.StatusProcessing, j.Status)
	require.Equal(t, "lease_other", j.Lease)
}

func TestSweeperDeletesExpiredFiles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	put := func(expires time.Time) string {
		id := domain.NewFileID()
		require.NoError(t, e.blobs.Put(ctx, id, bytes.NewReader([]byte("x")), 1, "text/plain"))
		require.NoError(t, e.store.Files().Put(ctx, domain.File{ID: id, UserID: e.user, Name: "x", Kind: domain.FileUpload, CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: expires}))
		return id
	}
	expired := put(now.Add(-time.Minute))
	fresh := put(now.Add(time.Hour))
	inUse := put(time.Time{})

	s, err := workers.NewSweeper(e.store.Files(), e.blobs, workers.WithSweepClock(func() time.Time { return now }))
	require.NoError(t, err)
	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	_, err = e.store.Files().Get(ctx, expired)
	require.ErrorIs(t, err, domain.ErrFileNotFound)
	_, _, err = e.blobs.Get(ctx, expired)
	require.Error(t, err)
	for _, id := range []string{fresh, inUse} {
		_, err := e.store.Files().Get(ctx, id)
		require.NoError(t, err)
		rc, _, err := e.blobs.Get(ctx, id)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
	}

	// Run sweeps at once and then on its interval until stopped.
	expired = put(now.Add(-time.Second))
	s, err = workers.NewSweeper(e.store.Files(), e.blobs, workers.WithSweepClock(func() time.Time { return now }), workers.WithSweepInterval(10*time.Millisecond))
	require.NoError(t, err)
	background(t, s.Run)
	require.Eventually(t, func() bool {
		_, err := e.store.Files().Get(ctx, expired)
		return errors.Is(err, domain.ErrFileNotFound)
	}, 10*time.Second, 10*time.Millisecond)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	engines := registry(engineFunc(copyEngine), domain.ImageConversion)
	r := e.runner(t, e.store, engines, workers.WithMetrics(reg), workers.WithPoolName(domain.PoolStandard))
	e.runner(t, e.store, engines, workers.WithMetrics(reg), workers.WithPoolName(domain.PoolLarge)) // shares the collectors
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, map[string]float64{
		"turbolane_worker_runs_total,outcome=completed,pool=standard,processor_type=image_conversion":           1,
		"turbolane_worker_run_duration_seconds,outcome=completed,pool=standard,processor_type=image_conversion": 1,
		"turbolane_worker_busy_slots,pool=standard":                                                             0,
	}, got)
}
