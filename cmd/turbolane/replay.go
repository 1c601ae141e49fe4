package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/projections"
)

// replay rebuilds the read views from sequence 1 of JOB_EVENTS. Without
// --verify it replaces data-dir/views.db (stop `serve` first); with --verify
// it rebuilds into a temporary file and compares it with the live views.
func replay(ctx context.Context, cfg Config, stdout io.Writer, logger *slog.Logger) error {
	m := NewMain(RoleWorker, cfg, logger)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	if err := m.connectNATS(ctx); err != nil {
		return err
	}
	defer m.Close()

	live := filepath.Join(cfg.DataDir, "views.db")
	target := live + ".rebuild"
	_ = os.Remove(target)
	n, err := rebuild(ctx, m, target)
	if err != nil {
		return err
	}
	if !cfg.Verify {
		for _, suffix := range []string{"-wal", "-shm"} {
			_ = os.Remove(live + suffix)
		}
		if err := os.Rename(target, live); err != nil {
			return fmt.Errorf("replace views: %w", err)
		}
		fmt.Fprintf(stdout, "replayed %d events into %s\n", n, live)
		return nil
	}
	defer os.Remove(target)
	diffs, err := compareViews(ctx, live, target)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Fprintln(stdout, d)
		}
		return fmt.Errorf("replay of %d events differs from the live views in %d places", n, len(diffs))
	}
	fmt.Fprintf(stdout, "replayed %d events: the rebuilt views equal the live ones\n", n)
	return nil
}

// rebuild folds the whole stream into a fresh view at path and returns the
// number of the last event applied.
func rebuild(ctx context.Context, m *Main, path string) (uint64, error) {
	view, err := projections.Open(path)
	if err != nil {
		return 0, err
	}
	defer view.Close()
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx, m.Store) }()
	werr := view.WaitFor(ctx, last)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return last, werr
}

// compareViews lists every difference between two views' jobs and
// per-type durations.
func compareViews(ctx context.Context, aPath, bPath string) ([]string, error) {
	a, err := projections.Open(aPath)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := projections.Open(bPath)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return diffViews(ctx, a, b)
}

func diffViews(ctx context.Context, a, b *projections.JobView) ([]string, error) {
	ja, err := a.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	jb, err := b.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]domain.Job{}
	for _, j := range jb {
		byID[j.ID] = j
	}
	var diffs []string
	for _, j := range ja {
		other, ok := byID[j.ID]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("job %s: in the live view only", j.ID))
		case !reflect.DeepEqual(j, other):
			diffs = append(diffs, fmt.Sprintf("job %s: live %+v, rebuilt %+v", j.ID, j, other))
		}
		delete(byID, j.ID)
	}
	for id := range byID {
		diffs = append(diffs, fmt.Sprintf("job %s: in the rebuilt view only", id))
	}
	da, err := a.Durations(ctx)
	if err != nil {
		return nil, err
	}
	db, err := b.Durations(ctx)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(da, db) {
		diffs = append(diffs, fmt.Sprintf("durations: live %v, rebuilt %v", da, db))
	}
	return diffs, nil
}
