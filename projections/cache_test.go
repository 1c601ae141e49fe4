package projections

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

// TestCachedGetFollowsCommits reads every step of a lifecycle twice (the
// second read is served from the cache) and compares both with a view that
// caches nothing and with the folded events.
func TestCachedGetFollowsCommits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cached, _ := openView(t)
	plain, _ := openView(t, WithCacheSize(0))
	h := newHistory()

	var jobID string
	steps := []func() []domain.Event{
		func() []domain.Event {
			var evs []domain.Event
			jobID, evs = h.create(t, "user_c", domain.ImageConversion, imageParams("file_1"))
			return evs
		},
		func() []domain.Event { return h.start(t, jobID) },
		func() []domain.Event { return h.progress(t, jobID, 30) },
		func() []domain.Event { return h.complete(t, jobID) },
	}
	for i, step := range steps {
		evs := step()
		for _, v := range []*JobView{cached, plain} {
			require.NoError(t, v.Apply(ctx, evs...))
		}
		for range 2 {
			got, err := cached.Get(ctx, jobID)
			require.NoError(t, err, "step %d", i)
			require.Equal(t, h.jobs[jobID], got, "step %d", i)
			want, err := plain.Get(ctx, jobID)
			require.NoError(t, err)
			require.Equal(t, want, got, "step %d", i)
		}
	}
	assert.Len(t, plain.cache.jobs, 0, "WithCacheSize(0) keeps nothing")

	require.NoError(t, cached.Apply(ctx, h.remove(t, jobID)...))
	_, err := cached.Get(ctx, jobID)
	require.ErrorIs(t, err, domain.ErrJobNotFound, "a deleted job must not be served from the cache")
}

// TestCachedGetIsACopy modifies everything a caller could modify in a job
// it got and checks that the next Get is unchanged.
func TestCachedGetIsACopy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	jobID, evs := h.create(t, "user_m", domain.PDFOperations, map[string]any{"operation": "merge", "file_ids": []any{"f1", "f2"}})
	require.NoError(t, v.Apply(ctx, throughJSON(t, evs[0])))
	require.NoError(t, v.Apply(ctx, h.start(t, jobID)...))
	require.NoError(t, v.Apply(ctx, h.complete(t, jobID)...))

	first, err := v.Get(ctx, jobID)
	require.NoError(t, err)
	want, err := v.Get(ctx, jobID)
	require.NoError(t, err)

	got, err := v.Get(ctx, jobID)
	require.NoError(t, err)
	got.Params["operation"] = "split"
	if ids, ok := got.Params["file_ids"].([]string); ok && len(ids) > 0 {
		ids[0] = "changed"
	}
	if len(got.ResultFiles) > 0 {
		got.ResultFiles[0].FileName = "changed"
	}
	if len(got.InputFiles) > 0 {
		got.InputFiles[0].FileID = "changed"
	}
	*got.StartedAt = got.StartedAt.Add(1)
	*got.CompletedAt = got.CompletedAt.Add(1)

	again, err := v.Get(ctx, jobID)
	require.NoError(t, err)
	require.Equal(t, want, again)
	require.Equal(t, first, again)
}

func TestCachedEstimateFollowsCompletions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()

	for range 2 {
		d, err := v.EstimatedDuration(ctx, domain.ImageConversion)
		require.NoError(t, err)
		require.Nil(t, d, "no completed job yet (also when cached)")
	}
	id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
	require.NoError(t, v.Apply(ctx, evs...))
	require.NoError(t, v.Apply(ctx, h.start(t, id)...))
	d, err := v.EstimatedDuration(ctx, domain.ImageConversion)
	require.NoError(t, err)
	require.Nil(t, d, "started is not completed")

	require.NoError(t, v.Apply(ctx, h.complete(t, id)...))
	for range 2 {
		d, err = v.EstimatedDuration(ctx, domain.ImageConversion)
		require.NoError(t, err)
		require.NotNil(t, d)
		assert.InDelta(t, h.jobs[id].ProcessingSeconds, *d, 1e-9)
	}
	*d = -1 // the caller's copy only
	d, err = v.EstimatedDuration(ctx, domain.ImageConversion)
	require.NoError(t, err)
	assert.InDelta(t, h.jobs[id].ProcessingSeconds, *d, 1e-9)
}

func TestResetEmptiesTheCache(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
	require.NoError(t, v.Apply(ctx, evs...))
	_, err := v.Get(ctx, id)
	require.NoError(t, err)
	require.NoError(t, v.Reset(ctx))
	_, err = v.Get(ctx, id)
	require.ErrorIs(t, err, domain.ErrJobNotFound)
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t, WithCacheSize(2))
	h := newHistory()
	var ids []string
	for range 5 {
		id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
		require.NoError(t, v.Apply(ctx, evs...))
		ids = append(ids, id)
	}
	for _, id := range ids {
		got, err := v.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, h.jobs[id], got)
		assert.LessOrEqual(t, len(v.cache.jobs), 2)
	}
	_, err := Open(":memory:", WithCacheSize(-1))
	require.Error(t, err)
}

// TestCacheDropsReadsThatRacedACommit is the interleaving a concurrent Get
// can hit: it reads the row, a commit changes the job, and only then does
// the Get try to store what it read. The old read must not be stored.
func TestCacheDropsReadsThatRacedACommit(t *testing.T) {
	t.Parallel()
	c := newReadCache(8)
	old := domain.Job{ID: "job_1", Status: domain.StatusQueued}

	gen := c.generation()
	c.committed([]string{"job_1"}, false) // the commit lands between the read and the store
	c.storeJob(gen, old)
	_, ok := c.job("job_1")
	require.False(t, ok, "a read from before the commit was cached")

	gen = c.generation()
	c.storeJob(gen, old)
	got, ok := c.job("job_1")
	require.True(t, ok)
	require.Equal(t, old, got)

	c.storeEstimate(gen, domain.ImageConversion, nil)
	c.committed(nil, true)
	_, ok = c.estimate(domain.ImageConversion)
	require.False(t, ok, "a durations change must drop the estimates")
}
