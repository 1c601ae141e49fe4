package workers_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/workers"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a real in-process nats-server with the event store on it and a
// real disk blob store.
type env struct {
	srv      *server.Server
	store    *eventstore.Store
	blobs    *blobstore.Disk
	blobDir  string
	ackWait  time.Duration
	user     string
	workRoot string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	e := &env{srv: srv, ackWait: 600 * time.Millisecond, user: "user_test", blobDir: t.TempDir(), workRoot: filepath.Join(t.TempDir(), "work", "standard")}
	e.store = e.connect(t)
	e.blobs, err = blobstore.NewDisk(e.blobDir, "http://127.0.0.1:1", []byte("0123456789abcdef0123"))
	require.NoError(t, err)
	return e
}

// connect opens another client of the same server, as another worker
// process would.
func (e *env) connect(t *testing.T) *eventstore.Store {
	t.Helper()
	nc, err := eventstore.ConnectEmbedded(e.srv)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return e.open(t, nc)
}

func (e *env) open(t *testing.T, nc *nats.Conn) *eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := eventstore.Open(ctx, nc, eventstore.WithAckWait(e.ackWait))
	require.NoError(t, err)
	return s
}

// upload stores data as a confirmed upload, the way the API does.
func (e *env) upload(t *testing.T, name, mime string, data []byte) domain.InputFile {
	t.Helper()
	ctx := context.Background()
	id := domain.NewFileID()
	require.NoError(t, e.blobs.Put(ctx, id, bytes.NewReader(data), int64(len(data)), mime))
	now := time.Now().UTC()
	require.NoError(t, e.store.Files().Put(ctx, domain.File{
		ID: id, UserID: e.user, Name: name, Size: int64(len(data)), MimeType: mime,
		Kind: domain.FileUpload, Confirmed: true, CreatedAt: now, // ExpiresAt cleared: in use by a job
	}))
	return domain.InputFile{FileID: id, FileName: name, MimeType: mime, SizeBytes: int64(len(data))}
}

// create creates a job through the event store.
func (e *env) create(t *testing.T, pt domain.ProcessorType, params map[string]any, pool string, in ...domain.InputFile) string {
	t.Helper()
	params["file_id"] = in[0].FileID
	p, _, err := domain.ValidateParams(pt, params)
	require.NoError(t, err)
	id := domain.NewJobID()
	_, err = e.store.Execute(context.Background(), id, domain.Create{
		ID: domain.NewID("cmd"), JobID: id, UserID: e.user, ProcessorType: pt, Params: p, InputFiles: in, Pool: pool,
	})
	require.NoError(t, err)
	return id
}

func (e *env) events(t *testing.T, jobID string) []domain.Event {
	t.Helper()
	evs, err := e.store.Load(context.Background(), jobID)
	require.NoError(t, err)
	return evs
}

func (e *env) job(t *testing.T, jobID string) domain.Job {
	t.Helper()
	return domain.Fold(e.events(t, jobID))
}

// waitFor polls the job until cond holds.
func (e *env) waitFor(t *testing.T, jobID string, what string, cond func(domain.Job, []domain.Event) bool) domain.Job {
	t.Helper()
	var j domain.Job
	require.Eventually(t, func() bool {
		evs := e.events(t, jobID)
		j = domain.Fold(evs)
		return cond(j, evs)
	}, 20*time.Second, 10*time.Millisecond, "job %s never %s", jobID, what)
	return j
}

func (e *env) waitStatus(t *testing.T, jobID string, st domain.Status) domain.Job {
	t.Helper()
	return e.waitFor(t, jobID, "became "+string(st), func(j domain.Job, _ []domain.Event) bool { return j.Status == st })
}

func count(evs []domain.Event, typ domain.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// blobCount counts the objects in the disk store.
func (e *env) blobCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.blobDir, "objects"))
	require.NoError(t, err)
	return len(entries)
}

// resultRecords returns the file records of a job's results.
func (e *env) resultRecords(t *testing.T, jobID string) []domain.File {
	t.Helper()
	all, err := e.store.Files().List(context.Background())
	require.NoError(t, err)
	var out []domain.File
	for _, f := range all {
		if f.JobID == jobID && f.Kind == domain.FileResult {
			out = append(out, f)
		}
	}
	return out
}

func (e *env) runner(t *testing.T, store *eventstore.Store, reg workers.Registry, opts ...workers.RunnerOption) *workers.Runner {
	t.Helper()
	opts = append([]workers.RunnerOption{workers.WithWorkRoot(e.workRoot), workers.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	r, err := workers.NewRunner(store, e.blobs, store.Files(), reg, opts...)
	require.NoError(t, err)
	return r
}

// background runs fn until the test ends and waits for it.
func background(t *testing.T, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("background task: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// delivery is a work item handed to Runner.Handle directly, as a
// redelivery or a duplicate would arrive.
type delivery struct {
	item eventstore.WorkItem
	n    uint64
}

func (d delivery) Item() eventstore.WorkItem { return d.item }
func (d delivery) NumDelivered() uint64      { return d.n }

func item(jobID string, attempt int) delivery {
	return delivery{item: eventstore.WorkItem{JobID: jobID, Attempt: attempt, Pool: domain.PoolStandard, EventID: domain.NewID("evt")}, n: 1}
}

// engineFunc adapts a function to workers.Engine.
type engineFunc func(ctx context.Context, in workers.Input) ([]workers.Output, error)

func (f engineFunc) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	return f(ctx, in)
}

// copyEngine writes its input back as "<name>.out".
func copyEngine(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	b, err := os.ReadFile(in.Files[0].Path)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(in.WorkDir, "result.txt")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, err
	}
	return []workers.Output{{Path: p, Name: in.Files[0].Name + ".out", MimeType: "text/plain"}}, nil
}

// gate is an engine that writes an output, says it started and blocks until
// released or cancelled.
type gate struct {
	started chan string // the job's work dir, once per run
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan string, 8), release: make(chan struct{})} }

func (g *gate) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	outs, err := copyEngine(ctx, in)
	if err != nil {
		return nil, err
	}
	g.started <- in.WorkDir
	select {
	case <-g.release:
		return outs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func registry(e workers.Engine, types ...domain.ProcessorType) workers.Registry {
	r := workers.Registry{}
	r.Register(e, types...)
	return r
}

func photo(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

func connectRaw(e *env) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.srv))
}
