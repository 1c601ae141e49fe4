package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convilyn/turbolane/domain"
)

// Source delivers the job event stream from stream sequence from, in stream
// order, until ctx is done or fn returns an error. eventstore.Store
// satisfies it.
type Source interface {
	Subscribe(ctx context.Context, from uint64, fn func(context.Context, domain.Event) error) error
}

// History loads one job's events, oldest first. eventstore.Store satisfies
// it.
type History interface {
	Load(ctx context.Context, jobID string) ([]domain.Event, error)
}

// Buckets of the time histograms, in seconds: sub-second image jobs up to
// ten-minute media jobs.
var timeBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// Events folds job events into counters and histograms:
//
//	turbolane_jobs_created_total{processor_type}
//	turbolane_jobs_completed_total{processor_type}
//	turbolane_jobs_failed_total{processor_type, code}
//	turbolane_jobs_retried_total{processor_type}
//	turbolane_job_processing_seconds{processor_type, outcome}  (started → completed/failed, from the event data)
//	turbolane_job_queue_seconds{processor_type}                (created or retried → started; takeovers excluded)
//
// It counts the events it observes, so a process that follows the stream
// from its end at start-up counts what happened while it ran: a restart is
// a counter reset, which rate() and increase() handle. Every process that
// runs it sees every event, so aggregate over instances with max, not sum.
// It is safe for concurrent use.
type Events struct {
	created, completed, retried *prometheus.CounterVec
	failed                      *prometheus.CounterVec
	processing, queue           *prometheus.HistogramVec
	history                     History

	mu   sync.Mutex
	jobs map[string]*jobInfo // jobs between created/retried and their outcome
}

type jobInfo struct {
	typ      domain.ProcessorType
	queuedAt time.Time // zero once started
}

// NewEvents registers the event metrics with reg. history looks up jobs
// whose created event came before the process started following; nil
// leaves their processor type "unknown".
func NewEvents(reg prometheus.Registerer, history History) (*Events, error) {
	if reg == nil {
		return nil, errors.New("new event metrics: nil registerer")
	}
	m := &Events{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_jobs_created_total", Help: "Jobs created, by processor type (from created events).",
		}, []string{"processor_type"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_jobs_completed_total", Help: "Jobs completed, by processor type (from completed events).",
		}, []string{"processor_type"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_jobs_failed_total", Help: "Job attempts failed, by processor type and error code (from failed events).",
		}, []string{"processor_type", "code"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_jobs_retried_total", Help: "Failed jobs retried, by processor type (from retried events).",
		}, []string{"processor_type"}),
		processing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "turbolane_job_processing_seconds", Help: "Processing time of an attempt (started to completed or failed), by processor type and outcome.",
			Buckets: timeBuckets,
		}, []string{"processor_type", "outcome"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "turbolane_job_queue_seconds", Help: "Queue time of an attempt (created or retried to started), by processor type.",
			Buckets: timeBuckets,
		}, []string{"processor_type"}),
		history: history,
		jobs:    make(map[string]*jobInfo),
	}
	for _, c := range []*prometheus.CounterVec{m.created, m.completed, m.failed, m.retried} {
		if err := reg.Register(c); err != nil {
			return nil, wrapRegister(err)
		}
	}
	for _, h := range []*prometheus.HistogramVec{m.processing, m.queue} {
		if err := reg.Register(h); err != nil {
			return nil, wrapRegister(err)
		}
	}
	return m, nil
}

// Run follows src from stream sequence from (typically the last sequence + 1
// at start-up) and observes every event. It blocks until ctx is done (nil)
// or the subscription fails; then it subscribes again after a second from
// the event after the last one it saw, so a NATS restart costs no events.
func (m *Events) Run(ctx context.Context, src Source, from uint64) error {
	next := from
	for {
		err := src.Subscribe(ctx, next, func(ctx context.Context, ev domain.Event) error {
			m.Observe(ctx, ev)
			next = ev.Sequence + 1
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		_ = err // a failed subscription is retried; the view logs the same outage
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Observe counts one event. Events of one job must come in stream order.
func (m *Events) Observe(ctx context.Context, ev domain.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch d := ev.Data.(type) {
	case domain.Created:
		m.jobs[ev.JobID] = &jobInfo{typ: d.ProcessorType, queuedAt: ev.Time}
		m.created.WithLabelValues(string(d.ProcessorType)).Inc()
	case domain.Retried:
		info := m.lookup(ctx, ev)
		info.queuedAt = ev.Time
		m.retried.WithLabelValues(string(info.typ)).Inc()
	case domain.Started:
		info := m.lookup(ctx, ev)
		if !d.Takeover && !info.queuedAt.IsZero() {
			m.queue.WithLabelValues(string(info.typ)).Observe(nonNegative(ev.Time.Sub(info.queuedAt).Seconds()))
		}
		info.queuedAt = time.Time{}
	case domain.Completed:
		info := m.lookup(ctx, ev)
		m.completed.WithLabelValues(string(info.typ)).Inc()
		m.processing.WithLabelValues(string(info.typ), "completed").Observe(nonNegative(d.ProcessingTimeSeconds))
		delete(m.jobs, ev.JobID)
	case domain.Failed:
		info := m.lookup(ctx, ev)
		m.failed.WithLabelValues(string(info.typ), d.Error.Code).Inc()
		m.processing.WithLabelValues(string(info.typ), "failed").Observe(nonNegative(d.ProcessingTimeSeconds))
		// A retry looks the job up again, so failed jobs cost no memory.
		delete(m.jobs, ev.JobID)
	case domain.Deleted:
		delete(m.jobs, ev.JobID)
	}
}

// lookup returns what is known of the job, folding its history up to ev
// when the process started following after the job was created.
func (m *Events) lookup(ctx context.Context, ev domain.Event) *jobInfo {
	if info, ok := m.jobs[ev.JobID]; ok {
		return info
	}
	info := &jobInfo{typ: "unknown"}
	if m.history != nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		evs, err := m.history.Load(lctx, ev.JobID)
		cancel()
		if err == nil {
			for _, e := range evs {
				if ev.Sequence != 0 && e.Sequence >= ev.Sequence {
					break
				}
				switch d := e.Data.(type) {
				case domain.Created:
					info.typ, info.queuedAt = d.ProcessorType, e.Time
				case domain.Retried:
					info.queuedAt = e.Time
				case domain.Started:
					info.queuedAt = time.Time{}
				}
			}
		}
	}
	m.jobs[ev.JobID] = info
	return info
}

func nonNegative(s float64) float64 { return max(s, 0) }

func wrapRegister(err error) error {
	return errors.Join(errors.New("register job metrics"), err)
}
