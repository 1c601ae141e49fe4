package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

// openView opens a view in a fresh file under t.TempDir and closes it at the
// end of the test.
func openView(t testing.TB, opts ...Option) (*JobView, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "view.db")
	v, err := Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, v.Close()) })
	return v, path
}

// history is a little write side: it decides commands against folded state,
// stamps stream sequences and remembers every event, so tests can compare
// the view with domain.Fold of the same events.
type history struct {
	seq    uint64
	cmd    int
	now    time.Time
	jobs   map[string]domain.Job
	events []domain.Event
}

func newHistory() *history {
	// Nanoseconds on purpose: the view must round-trip them exactly.
	return &history{now: time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC), jobs: map[string]domain.Job{}}
}

// do decides cmd for jobID and returns the (sequenced) events.
func (h *history) do(t testing.TB, jobID string, cmd domain.Command) []domain.Event {
	t.Helper()
	evs, err := h.try(jobID, cmd)
	require.NoError(t, err)
	return evs
}

func (h *history) try(jobID string, cmd domain.Command) ([]domain.Event, error) {
	// Odd steps, so that no two events share a timestamp and sub-second
	// digits are exercised.
	h.now = h.now.Add(1234567891 * time.Nanosecond)
	evs, err := domain.Decide(h.jobs[jobID], cmd, h.now)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		h.seq++
		evs[i].Sequence = h.seq
		h.jobs[jobID] = domain.Apply(h.jobs[jobID], evs[i])
	}
	h.events = append(h.events, evs...)
	return evs, nil
}

func (h *history) id() string {
	h.cmd++
	return fmt.Sprintf("cmd_%06d", h.cmd)
}

func (h *history) create(t testing.TB, user string, pt domain.ProcessorType, params map[string]any) (string, []domain.Event) {
	t.Helper()
	jobID := domain.NewJobID()
	validated, files, err := domain.ValidateParams(pt, params)
	require.NoError(t, err)
	inputs := make([]domain.InputFile, len(files))
	for i, f := range files {
		inputs[i] = domain.InputFile{FileID: f, FileName: fmt.Sprintf("in%d.bin", i), MimeType: "application/octet-stream", SizeBytes: int64(1000 + i)}
	}
	evs := h.do(t, jobID, domain.Create{ID: h.id(), JobID: jobID, UserID: user, ProcessorType: pt, Params: validated, InputFiles: inputs})
	return jobID, evs
}

func (h *history) start(t testing.TB, jobID string) []domain.Event {
	t.Helper()
	j := h.jobs[jobID]
	return h.do(t, jobID, domain.Start{ID: h.id(), Attempt: j.RetryCount, WorkerID: "w1", Lease: "lease-" + h.id()})
}

func (h *history) progress(t testing.TB, jobID string, pct int) []domain.Event {
	t.Helper()
	return h.do(t, jobID, domain.ReportProgress{ID: h.id(), Lease: h.jobs[jobID].Lease, Progress: pct, Message: fmt.Sprintf("%d%% done", pct)})
}

func (h *history) complete(t testing.TB, jobID string) []domain.Event {
	t.Helper()
	return h.do(t, jobID, domain.Complete{ID: h.id(), Lease: h.jobs[jobID].Lease, ResultFiles: []domain.ResultFile{
		{FileID: domain.NewFileID(), FileName: "out.webp", MimeType: "image/webp", SizeBytes: 4321},
	}})
}

func (h *history) fail(t testing.TB, jobID string) []domain.Event {
	t.Helper()
	return h.do(t, jobID, domain.Fail{ID: h.id(), Lease: h.jobs[jobID].Lease, Error: domain.JobError{Code: domain.CodeCorruptInput, Message: "bad bytes"}})
}

func (h *history) retry(t testing.TB, jobID string) []domain.Event {
	t.Helper()
	return h.do(t, jobID, domain.Retry{ID: h.id()})
}

func (h *history) remove(t testing.TB, jobID string) []domain.Event {
	t.Helper()
	return h.do(t, jobID, domain.Delete{ID: h.id(), CleanupFiles: true})
}

// live returns the jobs that exist according to the fold, ordered by id, as
// Snapshot should return them.
func (h *history) live() []domain.Job {
	out := []domain.Job{}
	for _, j := range h.jobs {
		if j.Exists() {
			out = append(out, j)
		}
	}
	sortByID(out)
	return out
}

func imageParams(file string) map[string]any {
	return map[string]any{"file_id": file, "output_format": "webp", "quality": 80}
}

// throughJSON returns ev as a subscriber reads it from the stream: data
// encoded and decoded, so numbers in params come back as float64.
func throughJSON(t testing.TB, ev domain.Event) domain.Event {
	t.Helper()
	raw, err := json.Marshal(ev.Data)
	require.NoError(t, err)
	d, err := domain.DecodeEventData(ev.Type, ev.SchemaVersion, raw)
	require.NoError(t, err)
	ev.Data = d
	return ev
}

// memLog is an in-memory event log with JetStream-like Subscribe semantics:
// ordered delivery from a sequence, then live events as they are appended.
// It is a fake of the view's collaborator, not of the view.
type memLog struct {
	mu      sync.Mutex
	events  []domain.Event
	changed chan struct{}
	froms   []uint64
	err     error // returned by Subscribe once the log is drained, when set
	errOnce bool  // clear err after returning it once
}

func newMemLog() *memLog { return &memLog{changed: make(chan struct{})} }

func (l *memLog) append(evs ...domain.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, evs...)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *memLog) subscribedFrom() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.froms...)
}

func (l *memLog) Subscribe(ctx context.Context, from uint64, fn func(context.Context, domain.Event) error) error {
	l.mu.Lock()
	l.froms = append(l.froms, from)
	l.mu.Unlock()
	next := from
	for {
		l.mu.Lock()
		var todo []domain.Event
		// Positions in the log are stream sequences, as in JetStream; the
		// events' own Sequence fields are not trusted, so a test can feed
		// the view a broken event.
		if next-1 < uint64(len(l.events)) {
			todo = append(todo, l.events[next-1:]...)
		}
		changed, failure := l.changed, l.err
		l.mu.Unlock()
		for _, ev := range todo {
			if err := fn(ctx, ev); err != nil {
				return err
			}
			next++
		}
		if len(todo) == 0 && failure != nil {
			if l.errOnce {
				l.mu.Lock()
				l.err = nil
				l.mu.Unlock()
			}
			return failure
		}
		if len(todo) == 0 {
			select {
			case <-changed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

var _ Source = (*memLog)(nil)

// testContext bounds a test, so that a hang fails fast instead of at the
// go test timeout.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
