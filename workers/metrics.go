package workers

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convilyn/turbolane/domain"
)

// Metrics is an Observer that exports the runner's hooks to Prometheus:
// turbolane_worker_runs_total and turbolane_worker_run_duration_seconds by
// pool, processor type and outcome, and turbolane_worker_busy_slots by pool.
type Metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	busy     *prometheus.GaugeVec
}

var _ Observer = (*Metrics)(nil)

// NewMetrics registers the worker metrics with reg. Calling it again with
// the same registry (one runner per pool) shares the collectors.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("new worker metrics: nil registerer")
	}
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turbolane_worker_runs_total",
			Help: "Work item runs that claimed their attempt, by how they ended.",
		}, []string{"pool", "processor_type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "turbolane_worker_run_duration_seconds",
			Help:    "Time from claiming an attempt to its outcome (queue time excluded).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"pool", "processor_type", "outcome"}),
		busy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "turbolane_worker_busy_slots",
			Help: "Slots currently running a job.",
		}, []string{"pool"}),
	}
	var err error
	if m.runs, err = register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.busy, err = register(reg, m.busy); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register worker metrics: %w", err)
	}
	return c, nil
}

// OnStart counts a busy slot.
func (m *Metrics) OnStart(pool string, _ domain.ProcessorType) {
	m.busy.WithLabelValues(pool).Inc()
}

// OnFinish frees the slot and records the run.
func (m *Metrics) OnFinish(pool string, t domain.ProcessorType, o Outcome, d time.Duration) {
	m.busy.WithLabelValues(pool).Dec()
	m.runs.WithLabelValues(pool, string(t), string(o)).Inc()
	m.duration.WithLabelValues(pool, string(t), string(o)).Observe(d.Seconds())
}

// WithMetrics exports the runner's hooks to reg (see Metrics); it replaces
// any observer set before.
func WithMetrics(reg prometheus.Registerer) RunnerOption {
	return func(r *Runner) error {
		m, err := NewMetrics(reg)
		if err != nil {
			return err
		}
		r.observer = m
		return nil
	}
}
