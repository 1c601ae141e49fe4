package handlers_test

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/handlers"
	"github.com/convilyn/turbolane/projections"
)

// The real adapters satisfy the interfaces handlers declares, without glue
// (except the API keys, whose record type lives in eventstore).
var (
	_ handlers.Commands    = (*eventstore.Store)(nil)
	_ handlers.History     = (*eventstore.Store)(nil)
	_ handlers.FileRecords = (*eventstore.Files)(nil)
	_ handlers.Blobs       = (*blobstore.Disk)(nil)
	_ handlers.Blobs       = (*blobstore.S3)(nil)
	_ handlers.JobReader   = (*projections.JobView)(nil)
)

// keyStore adapts eventstore.Keys to handlers.KeyStore; cmd needs the same
// five lines.
type keyStore struct{ k *eventstore.Keys }

func (a keyStore) Put(ctx context.Context, k handlers.APIKey) error {
	return a.k.Put(ctx, eventstore.APIKey{Hash: k.Hash, UserID: k.UserID, Plan: k.Plan, CreatedAt: k.CreatedAt})
}

func (a keyStore) Get(ctx context.Context, hash string) (handlers.APIKey, error) {
	k, err := a.k.Get(ctx, hash)
	return handlers.APIKey{Hash: k.Hash, UserID: k.UserID, Plan: k.Plan, CreatedAt: k.CreatedAt}, err
}

// blindView is a job view that has seen nothing yet, so every read goes
// through the handlers' fallback to the real event history.
type blindView struct{}

func (blindView) Get(context.Context, string) (domain.Job, error) {
	return domain.Job{}, domain.ErrJobNotFound
}

func (blindView) List(context.Context, domain.ListQuery) ([]domain.Job, int, error) {
	return nil, 0, nil
}

func (blindView) Stats(context.Context, string) (domain.JobStats, error) {
	return domain.JobStats{}, domain.ErrJobNotFound
}
func (blindView) WaitFor(context.Context, uint64) error { return nil }
func (blindView) EstimatedDuration(context.Context, domain.ProcessorType) (*float64, error) {
	return nil, nil
}

// TestRealStores runs the API over a real in-process JetStream (event log,
// file records, API keys) and the real embedded disk blob store, serving
// its presigned URLs through the API's /blobs/ mount; once with the real
// SQLite job view fed from the stream, once with a view that has seen
// nothing, so that every read folds the history instead.
func TestRealStores(t *testing.T) {
	t.Parallel()
	t.Run("sqlite view", func(t *testing.T) { t.Parallel(); testRealStores(t, true) })
	t.Run("history fallback", func(t *testing.T) { t.Parallel(); testRealStores(t, false) })
}

func testRealStores(t *testing.T, realView bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := eventstore.ConnectEmbedded(srv)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	store, err := eventstore.Open(ctx, nc)
	require.NoError(t, err)
	var view handlers.JobReader = blindView{}
	synced := func(uint64) {}
	if realView {
		v, err := projections.Open(filepath.Join(t.TempDir(), "view.db"))
		require.NoError(t, err)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- v.Run(runCtx, store) }()
		t.Cleanup(func() {
			stop()
			<-done
			require.NoError(t, v.Close())
		})
		view = v
		synced = func(seq uint64) { require.NoError(t, v.WaitFor(ctx, seq)) }
	}
	disk, err := blobstore.NewDisk(t.TempDir(), "http://tl.test", []byte("a disk secret of 32 bytes......."))
	require.NoError(t, err)

	h, err := handlers.New(handlers.Config{
		PublicURL: "http://tl.test", AdminToken: adminToken, WorkerToken: workerToken,
		SessionSecret: []byte("0123456789abcdef0123456789abcdef"), PlanLimits: testLimits(),
		BlobHandler: disk.Handler(),
	}, handlers.Deps{
		Commands: store, History: store, Jobs: view, Files: store.Files(), Keys: keyStore{store.Keys()}, Blobs: disk,
		EncodeEvent: func(ev domain.Event) any { return eventstore.CloudEventOf(ev) },
		Checks:      map[string]func(context.Context) error{"nats": store.Ping, "storage": disk.Ping},
	})
	require.NoError(t, err)
	e := &env{t: t, h: h}
	raw := func(method, target string, body []byte, hdr map[string]string) *response {
		u, err := url.Parse(target)
		require.NoError(t, err)
		require.Equal(t, "tl.test", u.Host)
		req := httptest.NewRequest(method, u.RequestURI(), bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return &response{t: t, ResponseRecorder: rec}
	}

	e.anon().do("GET", "/readyz", nil).status(http.StatusOK)
	c := e.user("ivy", domain.PlanFree)
	c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)

	// Presigned upload through the embedded store, then confirm.
	var p struct {
		FileID, UploadURL, Method string
		Headers                   map[string]string
	}
	c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "pic.png", "fileSize": 4}).status(http.StatusOK).decode(&p)
	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).fail(404, "file_not_found")
	raw(p.Method, p.UploadURL, []byte("\x89PNG"), p.Headers).status(http.StatusOK)
	var f struct{ FileSize int64 }
	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).status(http.StatusOK).decode(&f)
	require.EqualValues(t, 4, f.FileSize)

	// The embedded store enforces the declared size on a presigned PUT.
	var small struct {
		FileID, UploadURL, Method string
		Headers                   map[string]string
	}
	c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "s.png", "fileSize": 2}).status(http.StatusOK).decode(&small)
	raw(small.Method, small.UploadURL, []byte("toolong"), small.Headers).fail(413, "file_too_large")

	// A job over the real log; the blind view makes every read fold history.
	res := c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_conversion", "params": map[string]any{"file_id": p.FileID, "output_format": "webp"}})
	id := res.status(http.StatusAccepted).job()["jobId"].(string)
	c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK)
	e.anon().do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")

	// A worker runs it and stores a result with its record.
	lease := domain.NewID("lease")
	_, err = store.Execute(ctx, id, domain.Start{ID: domain.NewID("cmd"), Attempt: 0, WorkerID: "w", Lease: lease})
	require.NoError(t, err)
	e.bearer(workerToken).do("PATCH", "/api/v1/jobs/"+id+"/progress", map[string]any{"progress": 50}).status(http.StatusOK)
	out := domain.File{ID: domain.NewFileID(), UserID: "ivy", Name: "pic.webp", Size: 6, MimeType: "image/webp", Kind: domain.FileResult, JobID: id, Confirmed: true, CreatedAt: time.Now()}
	require.NoError(t, disk.Put(ctx, out.ID, strings.NewReader("RIFFWE"), 6, "image/webp"))
	require.NoError(t, store.Files().Put(ctx, out))
	done, err := store.Execute(ctx, id, domain.Complete{ID: domain.NewID("cmd"), Lease: lease, ResultFiles: []domain.ResultFile{{FileID: out.ID, FileName: out.Name, MimeType: out.MimeType, SizeBytes: 6}}})
	require.NoError(t, err)
	synced(done.Version)
	if realView {
		var list struct {
			Jobs       []map[string]any
			Pagination struct{ Total int }
		}
		c.do("GET", "/api/v1/jobs?status=completed", nil).status(http.StatusOK).decode(&list)
		require.Equal(t, 1, list.Pagination.Total)
		require.Equal(t, id, list.Jobs[0]["jobId"])
	}
	st := c.do("GET", "/api/v1/jobs/"+id+"/stats", nil).status(http.StatusOK)
	conform(t, "JobStats", st.Body.Bytes())

	j := c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK).job()
	require.Equal(t, "completed", j["status"])
	dl := j["resultFiles"].([]any)[0].(map[string]any)["downloadUrl"].(string)
	loc := raw("GET", dl, nil, map[string]string{"Authorization": "Bearer " + c.token}).status(http.StatusFound).Header().Get("Location")
	got := raw("GET", loc, nil, nil).status(http.StatusOK)
	require.Equal(t, "RIFFWE", got.Body.String())
	require.Equal(t, "image/webp", got.Header().Get("Content-Type"))

	zres := c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": []string{id}}).status(http.StatusOK)
	zr, err := zip.NewReader(bytes.NewReader(zres.Body.Bytes()), int64(zres.Body.Len()))
	require.NoError(t, err)
	require.Equal(t, id+"/pic.webp", zr.File[0].Name)

	evs := c.do("GET", "/api/v1/jobs/"+id+"/events", nil).status(http.StatusOK)
	conform(t, "JobEvents", evs.Body.Bytes())

	c.do("DELETE", "/api/v1/jobs/"+id, nil).status(http.StatusNoContent)
	_, err = disk.Stat(ctx, out.ID)
	require.ErrorIs(t, err, blobstore.ErrNotFound)
	_, err = disk.Stat(ctx, p.FileID)
	require.ErrorIs(t, err, blobstore.ErrNotFound)
	c.do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")
	e.bearer(adminToken).do("GET", "/api/v1/jobs/"+id+"/events", nil).status(http.StatusOK)
}
