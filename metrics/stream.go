package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stream is the JetStream state the sampler reads. eventstore.Store
// satisfies it.
type Stream interface {
	LastSequence(ctx context.Context) (uint64, error)
	QueueDepth(ctx context.Context, pool string) (waiting, running uint64, err error)
}

// Sampler is a Prometheus collector that reads, at every scrape:
//
//	turbolane_queue_depth{pool, state="waiting"|"running"}  work items not yet claimed / claimed and not acknowledged
//	turbolane_projection_lag_events                          last stream sequence − the read view's checkpoint
//
// A value that cannot be read (NATS down) is left out of that scrape, so a
// dashboard shows a gap instead of a wrong zero.
type Sampler struct {
	stream     Stream
	pools      []string
	checkpoint func() uint64
	timeout    time.Duration

	depth *prometheus.Desc
	lag   *prometheus.Desc
}

var _ prometheus.Collector = (*Sampler)(nil)

// NewSampler returns a sampler of the given pools' queues; checkpoint (nil
// when this process has no read view) returns the view's last applied
// sequence.
func NewSampler(stream Stream, pools []string, checkpoint func() uint64) (*Sampler, error) {
	if stream == nil {
		return nil, errors.New("new metrics sampler: nil stream")
	}
	return &Sampler{
		stream: stream, pools: append([]string(nil), pools...), checkpoint: checkpoint, timeout: 2 * time.Second,
		depth: prometheus.NewDesc("turbolane_queue_depth", "Work items of a pool: waiting (not yet claimed) and running (claimed, not yet acknowledged).", []string{"pool", "state"}, nil),
		lag:   prometheus.NewDesc("turbolane_projection_lag_events", "Events stored on JOB_EVENTS that this process's read view has not applied yet.", nil, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (s *Sampler) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.depth
	if s.checkpoint != nil {
		ch <- s.lag
	}
}

// Collect implements prometheus.Collector.
func (s *Sampler) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	for _, pool := range s.pools {
		waiting, running, err := s.stream.QueueDepth(ctx, pool)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.depth, prometheus.GaugeValue, float64(waiting), pool, "waiting")
		ch <- prometheus.MustNewConstMetric(s.depth, prometheus.GaugeValue, float64(running), pool, "running")
	}
	if s.checkpoint == nil {
		return
	}
	// Read the checkpoint first: the view only moves forward, so the lag
	// is never negative from a race.
	cp := s.checkpoint()
	last, err := s.stream.LastSequence(ctx)
	if err != nil {
		return
	}
	lag := 0.0
	if last > cp {
		lag = float64(last - cp)
	}
	ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, lag)
}
