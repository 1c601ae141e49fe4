package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) *eventstore.Store {
	t.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := eventstore.ConnectEmbedded(srv)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	store, err := eventstore.Open(context.Background(), nc)
	require.NoError(t, err)
	return store
}

type history struct {
	store *eventstore.Store
	last  uint64
}

// add appends events to a job, each at base + offset seconds.
func (h *history) add(t *testing.T, job string, base time.Time, evs ...timed) {
	t.Helper()
	for _, e := range evs {
		seq, err := h.store.Append(context.Background(), job, h.lastOf(t, job), domain.Event{
			ID: domain.NewID("cmd"), JobID: job, Type: e.d.EventType(), Time: base.Add(e.at), Data: e.d,
		})
		require.NoError(t, err)
		h.last = seq
	}
}

func (h *history) lastOf(t *testing.T, job string) uint64 {
	evs, err := h.store.Load(context.Background(), job)
	require.NoError(t, err)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Sequence
}

type timed struct {
	at time.Duration
	d  domain.EventData
}

func at(s float64, d domain.EventData) timed {
	return timed{time.Duration(s * float64(time.Second)), d}
}

// TestEventsFromTheStream follows a real JetStream from its end, as the API
// does at start-up: a job created before the start is looked up in its
// history, takeovers add no queue time, a retry queues again, and nothing
// before the start is counted.
func TestEventsFromTheStream(t *testing.T) {
	store := openStore(t)
	h := &history{store: store}
	base := time.Now().UTC().Truncate(time.Second)
	created := domain.Created{UserID: "u", ProcessorType: "image_conversion", Params: map[string]any{}, Pool: "standard"}

	// Before the start: a finished job (not counted) and a queued one.
	done, early := domain.NewJobID(), domain.NewJobID()
	h.add(t, done, base, at(0, created), at(1, domain.Started{Lease: "l"}), at(2, domain.Completed{ProcessingTimeSeconds: 1}))
	h.add(t, early, base, at(0, created))
	from := h.last + 1

	reg := prometheus.NewRegistry()
	ev, err := metrics.NewEvents(reg, store)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- ev.Run(ctx, store, from) }()
	defer func() { cancel(); require.NoError(t, <-stopped) }()

	// early: starts 4 s after creation, is taken over (no queue time),
	// fails, is retried and starts 1 s later, completes in 2 s.
	h.add(t, early, base,
		at(4, domain.Started{Lease: "a"}), at(40, domain.Started{Lease: "b", Takeover: true}),
		at(41, domain.Failed{Error: domain.JobError{Code: "timeout"}, ProcessingTimeSeconds: 1}),
		at(50, domain.Retried{RetryCount: 1}), at(51, domain.Started{Attempt: 1, Lease: "c"}),
		at(53, domain.Completed{ProcessingTimeSeconds: 2}))
	// A pdf job created after the start, queued 0.5 s, failing.
	pdf := domain.NewJobID()
	pc := created
	pc.ProcessorType = "pdf_operations"
	h.add(t, pdf, base, at(0, pc), at(0.5, domain.Started{Lease: "p"}),
		at(1, domain.Failed{Error: domain.JobError{Code: "corrupt_input"}, ProcessingTimeSeconds: 0.5}))

	require.Eventually(t, func() bool {
		_, v := gather(t, reg)
		return v[`turbolane_jobs_completed_total{processor_type="image_conversion"}`] == 1 &&
			v[`turbolane_jobs_failed_total{code="corrupt_input",processor_type="pdf_operations"}`] == 1
	}, 30*time.Second, 20*time.Millisecond)

	hists, values := gather(t, reg)
	require.Equal(t, map[string]float64{
		`turbolane_jobs_completed_total{processor_type="image_conversion"}`:                 1,
		`turbolane_jobs_created_total{processor_type="pdf_operations"}`:                     1,
		`turbolane_jobs_failed_total{code="corrupt_input",processor_type="pdf_operations"}`: 1,
		`turbolane_jobs_failed_total{code="timeout",processor_type="image_conversion"}`:     1,
		`turbolane_jobs_retried_total{processor_type="image_conversion"}`:                   1,
	}, values)

	// Queue time: 4 s and 1 s for image_conversion (the takeover adds
	// nothing), 0.5 s for pdf_operations; processing from the event data.
	require.Equal(t, hist{2, 5}, hists[`turbolane_job_queue_seconds{processor_type="image_conversion"}`])
	require.Equal(t, hist{1, 0.5}, hists[`turbolane_job_queue_seconds{processor_type="pdf_operations"}`])
	require.Equal(t, hist{1, 2}, hists[`turbolane_job_processing_seconds{outcome="completed",processor_type="image_conversion"}`])
	require.Equal(t, hist{1, 1}, hists[`turbolane_job_processing_seconds{outcome="failed",processor_type="image_conversion"}`])
	require.Equal(t, hist{1, 0.5}, hists[`turbolane_job_processing_seconds{outcome="failed",processor_type="pdf_operations"}`])
}

type hist struct {
	count uint64
	sum   float64
}

// gather returns the histograms and the counter and gauge values of reg by
// name{labels} (labels sorted by name, as Prometheus prints them).
func gather(t *testing.T, reg *prometheus.Registry) (map[string]hist, map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	hists, values := map[string]hist{}, map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetHistogram() != nil:
				hists[key] = hist{m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()}
			case m.GetCounter() != nil:
				values[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				values[key] = m.GetGauge().GetValue()
			}
		}
	}
	return hists, values
}

// TestSamplerReadsQueueDepthAndLag enqueues work on a real JetStream and
// checks the sampled gauges, before and after a worker claims an item.
func TestSamplerReadsQueueDepthAndLag(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	for range 3 {
		require.NoError(t, store.Enqueue(ctx, eventstore.WorkItem{JobID: domain.NewJobID(), Pool: "standard", EventID: domain.NewID("cmd")}))
	}
	h := &history{store: store}
	h.add(t, domain.NewJobID(), time.Now(), at(0, domain.Created{UserID: "u", ProcessorType: "image_conversion", Params: map[string]any{}, Pool: "standard"}))
	checkpoint := uint64(0)
	s, err := metrics.NewSampler(store, []string{"standard", "large"}, func() uint64 { return checkpoint })
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(s))

	// No worker yet: every item waits.
	_, got := gather(t, reg)
	require.Equal(t, map[string]float64{
		`turbolane_projection_lag_events`:                        1,
		`turbolane_queue_depth{pool="large",state="running"}`:    0,
		`turbolane_queue_depth{pool="large",state="waiting"}`:    0,
		`turbolane_queue_depth{pool="standard",state="running"}`: 0,
		`turbolane_queue_depth{pool="standard",state="waiting"}`: 3,
	}, got)

	// A worker holds one item: one running, two waiting; the view caught up.
	cctx, cancel := context.WithCancel(ctx)
	claimed, release := make(chan struct{}, 3), make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		consumed <- store.Consume(cctx, "standard", 1, func(ctx context.Context, _ eventstore.Delivery) error {
			claimed <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	defer func() { close(release); cancel(); require.NoError(t, <-consumed) }()
	<-claimed
	checkpoint = 1
	_, got = gather(t, reg)
	require.Equal(t, map[string]float64{
		`turbolane_projection_lag_events`:                        0,
		`turbolane_queue_depth{pool="large",state="running"}`:    0,
		`turbolane_queue_depth{pool="large",state="waiting"}`:    0,
		`turbolane_queue_depth{pool="standard",state="running"}`: 1,
		`turbolane_queue_depth{pool="standard",state="waiting"}`: 2,
	}, got)
}
