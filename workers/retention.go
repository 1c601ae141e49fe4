package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultSweepInterval is how often the sweeper looks for expired files.
const DefaultSweepInterval = time.Minute

// Sweeper deletes files whose retention has passed: first the bytes, then
// the record, so a failed delete is retried on the next sweep. Files with a
// zero ExpiresAt are kept (an upload in use by a job).
type Sweeper struct {
	files    FileRecords
	blobs    Blobs
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// SweeperOption configures a Sweeper.
type SweeperOption func(*Sweeper) error

// WithSweepInterval sets the time between sweeps (default 1 minute).
func WithSweepInterval(d time.Duration) SweeperOption {
	return func(s *Sweeper) error {
		if d <= 0 {
			return fmt.Errorf("sweep interval must be positive, got %s", d)
		}
		s.interval = d
		return nil
	}
}

// WithSweepClock sets the clock that decides what has expired.
func WithSweepClock(now func() time.Time) SweeperOption {
	return func(s *Sweeper) error {
		if now == nil {
			return errors.New("sweep clock must not be nil")
		}
		s.now = now
		return nil
	}
}

// WithSweepLogger sets the logger (default slog.Default()).
func WithSweepLogger(l *slog.Logger) SweeperOption {
	return func(s *Sweeper) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		s.log = l
		return nil
	}
}

// NewSweeper returns a retention sweeper over files and blobs.
func NewSweeper(files FileRecords, blobs Blobs, opts ...SweeperOption) (*Sweeper, error) {
	if files == nil || blobs == nil {
		return nil, errors.New("new sweeper: files and blobs are required")
	}
	s := &Sweeper{files: files, blobs: blobs, interval: DefaultSweepInterval, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, fmt.Errorf("new sweeper: %w", err)
		}
	}
	return s, nil
}

// Run sweeps every interval until ctx is done; a failed sweep is logged and
// retried on the next tick.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep expired files", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep deletes every file that has expired by now and returns how many it
// deleted. It carries on past a file it cannot delete and returns the first
// error.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	all, err := s.files.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list file records: %w", err)
	}
	now := s.now()
	var first error
	n := 0
	for _, f := range all {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if f.ExpiresAt.IsZero() || f.ExpiresAt.After(now) {
			continue
		}
		if err := s.blobs.Delete(ctx, f.ID); err != nil {
			first = cmp(first, fmt.Errorf("delete blob of expired file %s: %w", f.ID, err))
			continue
		}
		if err := s.files.Delete(ctx, f.ID); err != nil {
			first = cmp(first, fmt.Errorf("delete record of expired file %s: %w", f.ID, err))
			continue
		}
		n++
	}
	return n, first
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
