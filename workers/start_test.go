package workers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/workers"
)

// countingJobs counts history reads.
type countingJobs struct {
	*eventstore.Store
	loads atomic.Int64
}

func (c *countingJobs) Load(ctx context.Context, jobID string) ([]domain.Event, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, jobID)
}

// TestRunStartsWithoutReadingHistory: a run goes straight to the Start
// command, which is decided on the job's current state, instead of reading
// the history first (one round trip less per job).
func TestRunStartsWithoutReadingHistory(t *testing.T) {
	e := newEnv(t)
	jobs := &countingJobs{Store: e.store}
	r, err := workers.NewRunner(jobs, e.blobs, e.store.Files(), registry(engineFunc(copyEngine), domain.ImageConversion),
		workers.WithWorkRoot(e.workRoot))
	require.NoError(t, err)
	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	require.NoError(t, r.Handle(context.Background(), item(id, 0)))
	require.Equal(t, domain.StatusCompleted, e.job(t, id).Status)
	require.Zero(t, jobs.loads.Load())
}

// TestItemOfMissingOrDeletedJobIsDropped: the Start command's refusal is
// enough to drop the item; nothing is appended.
func TestItemOfMissingOrDeletedJobIsDropped(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, e.store, registry(engineFunc(copyEngine), domain.ImageConversion))
	ctx := context.Background()

	missing := domain.NewJobID()
	require.NoError(t, r.Handle(ctx, item(missing, 0)))
	require.Empty(t, e.events(t, missing))

	id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
	_, err := e.store.Execute(ctx, id, domain.Delete{ID: domain.NewID("cmd")})
	require.NoError(t, err)
	before := len(e.events(t, id))
	require.NoError(t, r.Handle(ctx, item(id, 0)))
	require.Len(t, e.events(t, id), before, "no start after a delete")
	require.Equal(t, 0, count(e.events(t, id), domain.EventStarted))

	// A finished job's late duplicate is dropped too.
	done := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "b.jpg", "image/jpeg", []byte("y")))
	require.NoError(t, r.Handle(ctx, item(done, 0)))
	require.NoError(t, r.Handle(ctx, delivery{item: item(done, 0).item, n: 2}))
	require.Equal(t, 1, count(e.events(t, done), domain.EventStarted))
}

// countingFiles counts record writes per file id.
type countingFiles struct {
	workers.FileRecords
	mu   sync.Mutex
	puts map[string]int
}

func (c *countingFiles) Put(ctx context.Context, f domain.File) error {
	c.mu.Lock()
	c.puts[f.ID]++
	c.mu.Unlock()
	return c.FileRecords.Put(ctx, f)
}

// TestSharedInputIsExtendedOnce: jobs finishing one after the other on the
// same upload write its record once; it still outlives every result.
func TestSharedInputIsExtendedOnce(t *testing.T) {
	e := newEnv(t)
	files := &countingFiles{FileRecords: e.store.Files(), puts: map[string]int{}}
	r, err := workers.NewRunner(e.store, e.blobs, files, registry(engineFunc(copyEngine), domain.ImageConversion),
		workers.WithWorkRoot(e.workRoot))
	require.NoError(t, err)
	ctx := context.Background()
	in := e.upload(t, "a.jpg", "image/jpeg", []byte("x"))
	var results []domain.ResultFile
	for range 3 {
		id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, in)
		require.NoError(t, r.Handle(ctx, item(id, 0)))
		j := e.job(t, id)
		require.Equal(t, domain.StatusCompleted, j.Status)
		results = append(results, j.ResultFiles...)
	}
	require.Equal(t, 1, files.puts[in.FileID], "the second and third job find the input extended")
	up, err := e.store.Files().Get(ctx, in.FileID)
	require.NoError(t, err)
	for _, rf := range results {
		rec, err := e.store.Files().Get(ctx, rf.FileID)
		require.NoError(t, err)
		require.False(t, up.ExpiresAt.Before(rec.ExpiresAt), "the input must outlive result %s", rf.FileID)
	}
}

// failingBlobs refuses every Put.
type failingBlobs struct{ workers.Blobs }

func (failingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	return errors.New("disk full")
}

// failingResults refuses to record results.
type failingResults struct{ workers.FileRecords }

func (f failingResults) Put(ctx context.Context, rec domain.File) error {
	if rec.Kind == domain.FileResult {
		return errors.New("kv unavailable")
	}
	return f.FileRecords.Put(ctx, rec)
}

// A result's bytes and record are written side by side; when either fails,
// the other is removed, the job is not completed and the item is handed
// back.
func TestFailedResultWriteLeavesNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		failBlob, failRecord bool
	}{
		"blob put fails":   {failBlob: true},
		"record put fails": {failRecord: true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			var blobs workers.Blobs = e.blobs
			if tc.failBlob {
				blobs = failingBlobs{e.blobs}
			}
			var files workers.FileRecords = e.store.Files()
			if tc.failRecord {
				files = failingResults{files}
			}
			r, err := workers.NewRunner(e.store, blobs, files, registry(engineFunc(copyEngine), domain.ImageConversion),
				workers.WithWorkRoot(e.workRoot), workers.WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			id := e.create(t, domain.ImageConversion, params(), domain.PoolStandard, e.upload(t, "a.jpg", "image/jpeg", []byte("x")))
			require.Error(t, r.Handle(context.Background(), item(id, 0)), "handed back for another try")
			require.Zero(t, count(e.events(t, id), domain.EventCompleted))
			require.Empty(t, e.resultRecords(t, id))
			require.Equal(t, 1, e.blobCount(t), "only the input is left")
		})
	}
}
