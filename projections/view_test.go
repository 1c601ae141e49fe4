package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/domain"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBenchViews()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func sortByID(jobs []domain.Job) {
	slices.SortFunc(jobs, func(a, b domain.Job) int { return strings.Compare(a.ID, b.ID) })
}

func TestGetFollowsLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()

	var jobID string
	steps := []struct {
		name string
		do   func() []domain.Event
	}{
		{"created", func() []domain.Event {
			id, evs := h.create(t, "user_a", domain.ImageConversion, imageParams("file_1"))
			jobID = id
			return evs
		}},
		{"started", func() []domain.Event { return h.start(t, jobID) }},
		{"progressed", func() []domain.Event { return h.progress(t, jobID, 40) }},
		{"failed", func() []domain.Event { return h.fail(t, jobID) }},
		{"retried", func() []domain.Event { return h.retry(t, jobID) }},
		{"started again", func() []domain.Event { return h.start(t, jobID) }},
		{"progressed again", func() []domain.Event { return h.progress(t, jobID, 90) }},
		{"completed", func() []domain.Event { return h.complete(t, jobID) }},
	}
	for _, s := range steps {
		evs := s.do()
		require.NoError(t, v.Apply(ctx, evs...), s.name)
		got, err := v.Get(ctx, jobID)
		require.NoError(t, err, s.name)
		// The whole aggregate, exactly: times to the nanosecond, params with
		// their validated types, pointers, lease, pool, version.
		require.Equal(t, h.jobs[jobID], got, s.name)
		require.Equal(t, evs[len(evs)-1].Sequence, got.Version, s.name)

		st, err := v.Stats(ctx, jobID)
		require.NoError(t, err, s.name)
		require.Equal(t, domain.StatsOf(h.jobs[jobID]), st, s.name)
	}
	got, _ := v.Get(ctx, jobID)
	assert.Equal(t, domain.StatusCompleted, got.Status)
	assert.Equal(t, 1, got.RetryCount)
	assert.Equal(t, 80, got.Params["quality"])
	require.NotNil(t, got.StartedAt)
	require.NotNil(t, got.CompletedAt)
	assert.Equal(t, h.now, *got.CompletedAt)
	assert.Greater(t, got.ProcessingSeconds, 0.0)

	require.NoError(t, v.Apply(ctx, h.remove(t, jobID)...))
	_, err := v.Get(ctx, jobID)
	require.ErrorIs(t, err, domain.ErrJobNotFound)
	_, err = v.Stats(ctx, jobID)
	require.ErrorIs(t, err, domain.ErrJobNotFound)
	_, err = v.Get(ctx, domain.NewJobID())
	require.ErrorIs(t, err, domain.ErrJobNotFound)
}

func TestParamsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	cases := []struct {
		pt     domain.ProcessorType
		params map[string]any
	}{
		{domain.ImageConversion, map[string]any{"file_id": "f1", "output_format": "png", "quality": 7, "width": 640.0}},
		{domain.PDFOperations, map[string]any{"operation": "merge", "file_ids": []any{"f1", "f2", "f3"}}},
		{domain.PDFOperations, map[string]any{"operation": "rotate", "file_id": "f1", "angle": 180.0}},
		{domain.MediaProcessing, map[string]any{"operation": "trim", "file_id": "f1", "start": 1.5, "duration": 2.0}},
		{domain.OCRProcessing, map[string]any{"file_id": "f1"}},
	}
	for i, c := range cases {
		h := newHistory()
		h.seq = uint64(i * 10) // keep sequences increasing across histories
		jobID, evs := h.create(t, "user_p", c.pt, c.params)
		want := h.jobs[jobID].Params
		// The view gets the event the way the stream returns it.
		require.NoError(t, v.Apply(ctx, throughJSON(t, evs[0])))
		got, err := v.Get(ctx, jobID)
		require.NoError(t, err)
		require.Equal(t, want, got.Params, "%s %v", c.pt, c.params)
	}
}

func TestApplySkipsSeenAndUnknownEvents(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, path := openView(t)
	h := newHistory()

	a, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
	require.NoError(t, v.Apply(ctx, evs...))
	started := h.start(t, a)
	require.NoError(t, v.Apply(ctx, started...))
	before, err := v.Snapshot(ctx)
	require.NoError(t, err)

	// A redelivery of everything, and an overlap ending in a new event.
	require.NoError(t, v.Apply(ctx, h.events...))
	after, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	prog := h.progress(t, a, 10)
	require.NoError(t, v.Apply(ctx, append(slices.Clone(h.events[:2]), prog...)...))
	require.Equal(t, prog[0].Sequence, v.Checkpoint())
	got, err := v.Get(ctx, a)
	require.NoError(t, err)
	require.Equal(t, h.jobs[a], got)

	// Garbage: a started event for a job that was never created.
	ghost := domain.NewJobID()
	h.seq++
	require.NoError(t, v.Apply(ctx, domain.Event{ID: "x", JobID: ghost, Type: domain.EventStarted, Time: h.now,
		SchemaVersion: 1, Data: domain.Started{Lease: "l"}, Sequence: h.seq}))
	require.Equal(t, h.seq, v.Checkpoint(), "a skipped event still advances the checkpoint")
	_, err = v.Get(ctx, ghost)
	require.ErrorIs(t, err, domain.ErrJobNotFound)

	// An event without a sequence cannot be checkpointed.
	err = v.Apply(ctx, domain.Event{JobID: a, Type: domain.EventProgressed, Data: domain.Progressed{Progress: 5}})
	require.ErrorIs(t, err, ErrUnsequenced)
	require.Equal(t, h.seq, v.Checkpoint())

	// The checkpoint survives a reopen; old events stay no-ops.
	cp := v.Checkpoint()
	want, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, v.Close())
	v2, err := Open(path)
	require.NoError(t, err)
	defer v2.Close()
	require.Equal(t, cp, v2.Checkpoint())
	require.NoError(t, v2.Apply(ctx, h.events...))
	got2, err := v2.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got2)
	require.Equal(t, cp, v2.Checkpoint())

	_, err = v.Get(ctx, a)
	require.ErrorIs(t, err, ErrClosed)
}

func TestDeletedAndRecreatedInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	a, _ := h.create(t, "u", domain.ImageConversion, imageParams("f"))
	h.remove(t, a)
	b, _ := h.create(t, "u", domain.ImageConversion, imageParams("g"))
	h.start(t, b)
	h.progress(t, b, 50)
	h.progress(t, b, 60)
	h.complete(t, b)
	require.NoError(t, v.Apply(ctx, h.events...))
	snap, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, h.live(), snap)
	checkCounters(t, v)
	_, total, err := v.List(ctx, domain.ListQuery{UserID: "u"})
	require.NoError(t, err)
	require.Equal(t, 1, total)
}

// checkCounters compares the maintained per-user counters with a full count.
func checkCounters(t testing.TB, v *JobView) {
	t.Helper()
	q := func(query string) map[string]int64 {
		rows, err := v.read.Query(query)
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var u, pt string
			var st, n int64
			require.NoError(t, rows.Scan(&u, &st, &pt, &n))
			out[fmt.Sprintf("%s/%d/%s", u, st, pt)] = n
		}
		require.NoError(t, rows.Err())
		return out
	}
	want := q("SELECT user_id, status, processor_type, COUNT(*) FROM jobs GROUP BY 1, 2, 3")
	got := q("SELECT user_id, status, processor_type, n FROM job_counts")
	require.Equal(t, want, got)
}

func TestCountersAfterRetryAndDelete(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	total := func(q domain.ListQuery) int {
		t.Helper()
		_, n, err := v.List(ctx, q)
		require.NoError(t, err)
		return n
	}
	var ids []string
	for i := range 4 {
		pt := domain.ImageConversion
		if i%2 == 1 {
			pt = domain.OCRProcessing
		}
		params := imageParams("f")
		if pt == domain.OCRProcessing {
			params = map[string]any{"file_id": "f"}
		}
		id, evs := h.create(t, "u", pt, params)
		require.NoError(t, v.Apply(ctx, evs...))
		ids = append(ids, id)
	}
	require.NoError(t, v.Apply(ctx, h.start(t, ids[0])...))
	require.NoError(t, v.Apply(ctx, h.fail(t, ids[0])...))
	assert.Equal(t, 4, total(domain.ListQuery{UserID: "u"}))
	assert.Equal(t, 1, total(domain.ListQuery{UserID: "u", Status: domain.StatusFailed}))
	assert.Equal(t, 3, total(domain.ListQuery{UserID: "u", Status: domain.StatusQueued}))
	assert.Equal(t, 1, total(domain.ListQuery{UserID: "u", Status: domain.StatusFailed, ProcessorType: domain.ImageConversion}))
	checkCounters(t, v)

	require.NoError(t, v.Apply(ctx, h.retry(t, ids[0])...))
	assert.Equal(t, 0, total(domain.ListQuery{UserID: "u", Status: domain.StatusFailed}))
	assert.Equal(t, 4, total(domain.ListQuery{UserID: "u", Status: domain.StatusQueued}))
	checkCounters(t, v)

	require.NoError(t, v.Apply(ctx, h.remove(t, ids[1])...))
	require.NoError(t, v.Apply(ctx, h.remove(t, ids[0])...))
	assert.Equal(t, 2, total(domain.ListQuery{UserID: "u"}))
	assert.Equal(t, 1, total(domain.ListQuery{UserID: "u", ProcessorType: domain.OCRProcessing}))
	assert.Equal(t, 1, total(domain.ListQuery{UserID: "u", ProcessorType: domain.ImageConversion}))
	assert.Equal(t, 0, total(domain.ListQuery{UserID: "nobody"}))
	checkCounters(t, v)

	var rows int
	require.NoError(t, v.read.QueryRow("SELECT COUNT(*) FROM job_counts WHERE n <= 0").Scan(&rows))
	assert.Zero(t, rows, "empty counters are dropped")
}

// listFixture creates jobs for two users in every status and two processor
// types, with a processing step so created and updated orders differ.
func listFixture(t *testing.T, v *JobView) *history {
	t.Helper()
	ctx := testContext(t)
	h := newHistory()
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	for i := range 37 {
		user := "user_a"
		if i%5 == 4 {
			user = "user_b"
		}
		pt, params := domain.ImageConversion, imageParams("f")
		if i%3 == 0 {
			pt, params = domain.OCRProcessing, map[string]any{"file_id": "f"}
		}
		id, _ := h.create(t, user, pt, params)
		ids = append(ids, id)
	}
	// Touch jobs in a shuffled order so that updatedAt order is not
	// createdAt order.
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, id := range ids {
		switch i % 4 {
		case 0: // stays queued, but is touched later by nothing
		case 1:
			h.start(t, id)
		case 2:
			h.start(t, id)
			h.complete(t, id)
		case 3:
			h.start(t, id)
			h.fail(t, id)
		}
	}
	require.NoError(t, v.Apply(ctx, h.events...))
	return h
}

// expectList is the reference implementation of List over the fold.
func expectList(h *history, q domain.ListQuery) ([]string, int) {
	var all []domain.Job
	for _, j := range h.live() {
		if j.UserID != q.UserID || (q.Status != "" && j.Status != q.Status) || (q.ProcessorType != "" && j.ProcessorType != q.ProcessorType) {
			continue
		}
		all = append(all, j)
	}
	cmp := func(a, b domain.Job) int {
		var c int
		switch q.SortBy {
		case "updatedAt":
			c = a.UpdatedAt.Compare(b.UpdatedAt)
		case "status":
			c = rankOf(a.Status) - rankOf(b.Status)
			if c == 0 {
				c = a.CreatedAt.Compare(b.CreatedAt)
			}
		default:
			c = a.CreatedAt.Compare(b.CreatedAt)
		}
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if q.Descending {
			c = -c
		}
		return c
	}
	slices.SortFunc(all, cmp)
	var ids []string
	from := (q.Page - 1) * q.Limit
	for i := from; i < len(all) && i < from+q.Limit; i++ {
		ids = append(ids, all[i].ID)
	}
	return ids, len(all)
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := listFixture(t, v)

	statuses := []domain.Status{"", domain.StatusQueued, domain.StatusProcessing, domain.StatusCompleted, domain.StatusFailed}
	types := []domain.ProcessorType{"", domain.ImageConversion, domain.OCRProcessing}
	for _, user := range []string{"user_a", "user_b", "user_c"} {
		for _, st := range statuses {
			for _, pt := range types {
				for _, sortBy := range []string{"createdAt", "updatedAt", "status"} {
					for _, desc := range []bool{false, true} {
						for _, limit := range []int{1, 4, 100} {
							for page := 1; page <= 31; page++ {
								q := domain.ListQuery{UserID: user, Status: st, ProcessorType: pt, SortBy: sortBy, Descending: desc, Page: page, Limit: limit}
								wantIDs, wantTotal := expectList(h, q)
								jobs, total, err := v.List(ctx, q)
								require.NoError(t, err)
								var gotIDs []string
								for _, j := range jobs {
									gotIDs = append(gotIDs, j.ID)
									require.Equal(t, h.jobs[j.ID], j)
								}
								require.Equal(t, wantIDs, gotIDs, "%+v", q)
								require.Equal(t, wantTotal, total, "%+v", q)
								require.NotNil(t, jobs, "an empty page is an empty slice")
								if len(wantIDs) == 0 && page > 1 {
									break // past the end, checked once
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	for range 7 {
		h.create(t, "u", domain.ImageConversion, imageParams("f"))
	}
	h.create(t, "other", domain.ImageConversion, imageParams("f"))
	require.NoError(t, v.Apply(ctx, h.events...))

	var seen []string
	for page, want := range []int{3, 3, 1, 0, 0} {
		jobs, total, err := v.List(ctx, domain.ListQuery{UserID: "u", Page: page + 1, Limit: 3, Descending: true})
		require.NoError(t, err)
		require.Len(t, jobs, want, "page %d", page+1)
		require.Equal(t, 7, total)
		for _, j := range jobs {
			require.Equal(t, "u", j.UserID, "users see only their own jobs")
			seen = append(seen, j.ID)
		}
	}
	require.Len(t, seen, 7)
	require.True(t, slices.IsSortedFunc(seen, func(a, b string) int {
		return -h.jobs[a].CreatedAt.Compare(h.jobs[b].CreatedAt)
	}), "newest first")

	// Defaults: page 1, 20 per page, createdAt, snake_case accepted.
	jobs, _, err := v.List(ctx, domain.ListQuery{UserID: "u", SortBy: "created_at"})
	require.NoError(t, err)
	require.Len(t, jobs, 7)
}

func TestListRejectsBadQueries(t *testing.T) {
	t.Parallel()
	v, _ := openView(t)
	for _, q := range []domain.ListQuery{
		{},
		{UserID: "u", Page: -1},
		{UserID: "u", Limit: 101},
		{UserID: "u", Limit: -3},
		{UserID: "u", SortBy: "size"},
		{UserID: "u", Status: "running"},
	} {
		_, _, err := v.List(context.Background(), q)
		require.ErrorIs(t, err, domain.ErrValidation, "%+v", q)
	}
}

// TestListNeverSorts checks with EXPLAIN QUERY PLAN that every filter and
// sort combination walks an index in order, which is what keeps a page of a
// million-job user at O(log n + page).
func TestListNeverSorts(t *testing.T) {
	t.Parallel()
	v, _ := openView(t)
	for _, st := range []domain.Status{"", domain.StatusCompleted} {
		for _, pt := range []domain.ProcessorType{"", domain.ImageConversion} {
			for _, sortBy := range []string{"createdAt", "updatedAt", "status"} {
				for _, desc := range []bool{false, true} {
					q := domain.ListQuery{UserID: "u", Status: st, ProcessorType: pt, SortBy: sortBy, Descending: desc, Page: 3, Limit: 10}
					lp, err := planList(q)
					require.NoError(t, err)
					// A total of 1000 reads forwards, 25 from the end.
					for _, total := range []int64{1000, 25} {
						sel, args, reversed, ok := lp.pageSQL(total)
						require.True(t, ok)
						require.Equal(t, total == 25, reversed)
						plan := explain(t, v, sel, args...)
						assert.NotContains(t, plan, "TEMP B-TREE", "%+v: %s", q, plan)
						assert.Contains(t, plan, "COVERING INDEX", "%+v: %s", q, plan)
					}
				}
			}
		}
	}
}

func explain(t *testing.T, v *JobView, query string, args ...any) string {
	t.Helper()
	rows, err := v.read.Query("EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "; ")
}

// randomHistory builds a mixed history across users and processor types.
func randomHistory(t *testing.T, n int, seed uint64) *history {
	t.Helper()
	h := newHistory()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var ids []string
	users := []string{"u1", "u2", "u3"}
	for len(h.events) < n {
		if len(ids) == 0 || rng.IntN(4) == 0 {
			pt, params := domain.ImageConversion, map[string]any{"file_id": "f", "output_format": "webp", "quality": float64(1 + rng.IntN(100))}
			switch rng.IntN(3) {
			case 1:
				pt, params = domain.PDFOperations, map[string]any{"operation": "merge", "file_ids": []any{"a", "b"}}
			case 2:
				pt, params = domain.MediaProcessing, map[string]any{"operation": "trim", "file_id": "f", "start": rng.Float64() * 10}
			}
			id, _ := h.create(t, users[rng.IntN(len(users))], pt, params)
			ids = append(ids, id)
			continue
		}
		id := ids[rng.IntN(len(ids))]
		j := h.jobs[id]
		var cmd domain.Command
		switch r := rng.IntN(10); {
		case r == 0:
			cmd = domain.Delete{ID: h.id()}
		case j.Status == domain.StatusQueued:
			cmd = domain.Start{ID: h.id(), Attempt: j.RetryCount, WorkerID: "w", Lease: h.id()}
		case j.Status == domain.StatusProcessing && r < 5:
			cmd = domain.ReportProgress{ID: h.id(), Lease: j.Lease, Progress: r * 20}
		case j.Status == domain.StatusProcessing && r < 8:
			cmd = domain.Complete{ID: h.id(), Lease: j.Lease, ResultFiles: []domain.ResultFile{{FileID: "r", FileName: "r", SizeBytes: int64(r)}}}
		case j.Status == domain.StatusProcessing:
			cmd = domain.Fail{ID: h.id(), Lease: j.Lease, Error: domain.JobError{Code: domain.CodeTimeout, Message: "slow"}}
		case j.Status == domain.StatusFailed:
			cmd = domain.Retry{ID: h.id()}
		default:
			cmd = domain.Delete{ID: h.id()}
		}
		_, err := h.try(id, cmd)
		if errors.Is(err, domain.ErrJobNotFound) {
			continue // deleted already
		}
		require.NoError(t, err)
	}
	return h
}

func TestResetAndRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := randomHistory(t, 800, 7)

	// Live: as the stream decodes them, in batches of varying size.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(h.events); {
		n := min(1+rng.IntN(40), len(h.events)-i)
		var batch []domain.Event
		for _, ev := range h.events[i : i+n] {
			batch = append(batch, throughJSON(t, ev))
		}
		require.NoError(t, v.Apply(ctx, batch...))
		i += n
	}
	live, err := v.Snapshot(ctx)
	require.NoError(t, err)
	liveDur, err := v.Durations(ctx)
	require.NoError(t, err)
	require.Equal(t, h.live(), live, "the view equals the fold")
	require.NotEmpty(t, liveDur)
	checkCounters(t, v)

	require.NoError(t, v.Reset(ctx))
	require.Zero(t, v.Checkpoint())
	empty, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.Empty(t, empty)
	d, err := v.EstimatedDuration(ctx, domain.ImageConversion)
	require.NoError(t, err)
	require.Nil(t, d)

	// Rebuild: one event per transaction, in-memory values.
	for _, ev := range h.events {
		require.NoError(t, v.Apply(ctx, ev))
	}
	rebuilt, err := v.Snapshot(ctx)
	require.NoError(t, err)
	rebuiltDur, err := v.Durations(ctx)
	require.NoError(t, err)
	require.Equal(t, live, rebuilt)
	require.Equal(t, liveDur, rebuiltDur)
	require.Equal(t, h.seq, v.Checkpoint())
	checkCounters(t, v)
}

func TestEstimatedDuration(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()

	d, err := v.EstimatedDuration(ctx, domain.ImageConversion)
	require.NoError(t, err)
	require.Nil(t, d, "no completed job yet")

	var secs []float64
	for i := range 3 {
		id, _ := h.create(t, "u", domain.ImageConversion, imageParams("f"))
		h.start(t, id)
		if i == 2 {
			h.fail(t, id) // failures do not count
			break
		}
		for range i {
			h.progress(t, id, 50) // makes the attempts differ in length
		}
		h.complete(t, id)
		secs = append(secs, h.jobs[id].ProcessingSeconds)
	}
	require.NoError(t, v.Apply(ctx, h.events...))
	d, err = v.EstimatedDuration(ctx, domain.ImageConversion)
	require.NoError(t, err)
	require.NotNil(t, d)
	assert.InDelta(t, (secs[0]+secs[1])/2, *d, 1e-9)
	durs, err := v.Durations(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), durs[domain.ImageConversion].Count)

	d, err = v.EstimatedDuration(ctx, domain.OCRProcessing)
	require.NoError(t, err)
	require.Nil(t, d)
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t)
	h := newHistory()
	_, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))

	require.NoError(t, v.WaitFor(ctx, 0), "sequence 0 is always reached")

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, v.WaitFor(short, 1), context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() { done <- v.WaitFor(ctx, evs[0].Sequence) }()
	require.NoError(t, v.Apply(ctx, evs...))
	require.NoError(t, <-done)
}

func TestRunFollowsSource(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, path := openView(t, WithBatchSize(16))
	h := newHistory()
	log := newMemLog()

	// History that exists before Run starts.
	for range 50 {
		id, _ := h.create(t, "u", domain.ImageConversion, imageParams("f"))
		h.start(t, id)
	}
	for _, ev := range h.events {
		log.append(throughJSON(t, ev))
	}

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- v.Run(runCtx, log) }()
	require.NoError(t, v.WaitFor(ctx, h.seq))

	// Live events after Run started: read-your-writes.
	for range 5 {
		id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
		log.append(throughJSON(t, evs[0]))
		require.NoError(t, v.WaitFor(ctx, evs[0].Sequence))
		got, err := v.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, h.jobs[id], got)
	}
	stop()
	require.NoError(t, <-ran, "Run returns nil on cancel")
	require.Equal(t, []uint64{1}, log.subscribedFrom())

	// A restart resumes after the checkpoint.
	cp := v.Checkpoint()
	require.NoError(t, v.Close())
	v2, err := Open(path)
	require.NoError(t, err)
	defer v2.Close()
	id, evs := h.create(t, "u", domain.OCRProcessing, map[string]any{"file_id": "f"})
	log.append(throughJSON(t, evs[0]))
	runCtx, stop = context.WithCancel(ctx)
	go func() { ran <- v2.Run(runCtx, log) }()
	require.NoError(t, v2.WaitFor(ctx, evs[0].Sequence))
	got, err := v2.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, h.jobs[id], got)
	stop()
	require.NoError(t, <-ran)
	require.Equal(t, []uint64{1, cp + 1}, log.subscribedFrom())
	snap, err := v2.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, h.live(), snap)
}

func TestRunReportsFailures(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	t.Run("source", func(t *testing.T) {
		t.Parallel()
		v, _ := openView(t)
		h := newHistory()
		h.create(t, "u", domain.ImageConversion, imageParams("f"))
		log := newMemLog()
		log.append(h.events...)
		boom := errors.New("connection lost")
		log.err = boom
		err := v.Run(ctx, log)
		require.ErrorIs(t, err, boom)
		require.Equal(t, h.seq, v.Checkpoint(), "what arrived before the failure is applied")
	})
	t.Run("source, resubscribed", func(t *testing.T) {
		t.Parallel()
		v, _ := openView(t, WithResubscribe(time.Millisecond))
		h := newHistory()
		h.create(t, "u", domain.ImageConversion, imageParams("f"))
		log := newMemLog()
		log.append(h.events...)
		log.err, log.errOnce = errors.New("connection lost"), true
		runCtx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- v.Run(runCtx, log) }()
		require.NoError(t, v.WaitFor(ctx, h.seq))
		id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
		log.append(evs...)
		require.NoError(t, v.WaitFor(ctx, evs[0].Sequence))
		_, err := v.Get(ctx, id)
		require.NoError(t, err)
		stop()
		require.NoError(t, <-ran)
		require.Equal(t, []uint64{1, 2}, log.subscribedFrom(), "resubscribed after the checkpoint")
	})
	t.Run("apply", func(t *testing.T) {
		t.Parallel()
		v, _ := openView(t)
		log := newMemLog()
		log.append(domain.Event{JobID: "job_x", Type: domain.EventDeleted, Data: domain.Deleted{}}) // no sequence
		err := v.Run(ctx, log)
		require.ErrorIs(t, err, ErrUnsequenced)
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		v, err := Open(":memory:")
		require.NoError(t, err)
		require.NoError(t, v.Close())
		require.ErrorIs(t, v.Run(ctx, newMemLog()), ErrClosed)
		require.ErrorIs(t, v.Apply(ctx, domain.Event{Sequence: 1}), ErrClosed)
		require.ErrorIs(t, v.WaitFor(ctx, 1), ErrClosed)
	})
}

func TestMemoryView(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, err := Open(":memory:")
	require.NoError(t, err)
	defer v.Close()
	h := randomHistory(t, 100, 11)
	require.NoError(t, v.Apply(ctx, h.events...))
	snap, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, h.live(), snap)
	_, _, err = v.List(ctx, domain.ListQuery{UserID: "u1", SortBy: "status"})
	require.NoError(t, err)
}

func TestOpenDropsOtherSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, path := openView(t)
	h := newHistory()
	id, evs := h.create(t, "u", domain.ImageConversion, imageParams("f"))
	require.NoError(t, v.Apply(ctx, evs...))
	_, err := v.write.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	require.NoError(t, v.Close())

	v2, err := Open(path)
	require.NoError(t, err)
	defer v2.Close()
	require.Zero(t, v2.Checkpoint(), "a view of another schema is rebuilt from the start")
	_, err = v2.Get(ctx, id)
	require.ErrorIs(t, err, domain.ErrJobNotFound)
	require.NoError(t, v2.Apply(ctx, evs...))
	_, err = v2.Get(ctx, id)
	require.NoError(t, err)
}

func TestOpenRejectsBadInput(t *testing.T) {
	t.Parallel()
	_, err := Open("")
	require.Error(t, err)
	_, err = Open(t.TempDir() + "/x.db?mode=ro")
	require.Error(t, err)
	_, err = Open(":memory:", WithBatchSize(0))
	require.Error(t, err)
	_, err = Open(":memory:", WithReaders(0))
	require.Error(t, err)
	_, err = Open(":memory:", WithResubscribe(0))
	require.Error(t, err)
	_, err = Open(t.TempDir() + "/missing/view.db")
	require.Error(t, err, "the directory must exist")
}

func TestReadsDuringRun(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v, _ := openView(t, WithBatchSize(8), WithReaders(2))
	h := randomHistory(t, 300, 5)
	log := newMemLog()

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- v.Run(runCtx, log) }()

	readers := make(chan error, 3)
	for r := range 3 {
		go func() {
			for {
				if v.Checkpoint() >= h.seq {
					readers <- nil
					return
				}
				jobs, total, err := v.List(ctx, domain.ListQuery{UserID: "u1", SortBy: []string{"createdAt", "updatedAt", "status"}[r], Limit: 7, Page: 2})
				if err == nil && len(jobs) > total {
					err = fmt.Errorf("page of %d jobs with a total of %d", len(jobs), total)
				}
				if err == nil && len(jobs) > 0 {
					_, err = v.Get(ctx, jobs[0].ID)
					if errors.Is(err, domain.ErrJobNotFound) {
						err = nil // deleted meanwhile
					}
				}
				if err != nil {
					readers <- err
					return
				}
			}
		}()
	}
	for _, ev := range h.events {
		log.append(throughJSON(t, ev))
	}
	require.NoError(t, v.WaitFor(ctx, h.seq))
	for range 3 {
		require.NoError(t, <-readers)
	}
	stop()
	require.NoError(t, <-ran)
	snap, err := v.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, h.live(), snap)
	checkCounters(t, v)
}
