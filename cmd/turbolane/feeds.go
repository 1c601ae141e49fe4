package main

import (
	"context"
	"fmt"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/metrics"
	"github.com/convilyn/turbolane/workers/webhook"
)

// startEventMetrics derives the job metrics from the event stream in the API
// role, where /metrics is served. The counters start at the stream's end:
// a process counts what happens while it runs (a restart is a counter reset,
// which Prometheus' rate and increase absorb), and it never re-counts
// history. The sampler reads queue depths and this view's lag at scrape time.
func (m *Main) startEventMetrics(ctx context.Context) error {
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("start event metrics: %w", err)
	}
	ev, err := metrics.NewEvents(m.Metrics, m.Store)
	if err != nil {
		return err
	}
	sampler, err := metrics.NewSampler(m.Store, []string{domain.PoolStandard, domain.PoolLarge}, m.View.Checkpoint)
	if err != nil {
		return err
	}
	if err := m.Metrics.Register(sampler); err != nil {
		return fmt.Errorf("register metrics sampler: %w", err)
	}
	m.spawn("event metrics", func() error { return ev.Run(ctx, m.Store, last+1) })
	return nil
}

// startWebhook forwards job events to --webhook-url from the worker role.
func (m *Main) startWebhook(ctx context.Context) error {
	cfg := m.Config
	if cfg.WebhookURL == "" {
		return nil
	}
	events, err := webhook.ParseEvents(cfg.WebhookEvents)
	if err != nil {
		return fmt.Errorf("--webhook-events: %w", err)
	}
	f, err := webhook.New(cfg.WebhookURL, []byte(cfg.WebhookSecret),
		webhook.WithEvents(events...), webhook.WithConsumerName(cfg.WebhookConsumer), webhook.WithLogger(m.Logger), webhook.WithMetrics(m.Metrics))
	if err != nil {
		return fmt.Errorf("--webhook-url: %w", err)
	}
	m.spawn("webhook", func() error { return f.Run(ctx, m.Store) })
	return nil
}
