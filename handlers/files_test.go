package handlers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

func TestGetFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.upload("report.pdf", []byte("%PDF-1.7"))
	res := c.do("GET", "/api/v1/files/"+id, nil).status(http.StatusOK)
	conform(t, "File", res.Body.Bytes())
	var f map[string]any
	res.decode(&f)
	require.Equal(t, "report.pdf", f["fileName"])
	require.Equal(t, "application/pdf", f["mimeType"])

	e.anon().do("GET", "/api/v1/files/"+id, nil).fail(404, "file_not_found")
	c.do("GET", "/api/v1/files/"+domain.NewFileID(), nil).fail(404, "file_not_found")
	c.do("GET", "/api/v1/files/nope", nil).fail(404, "file_not_found")

	// An expired upload is gone for the API even before the sweeper runs.
	rec, _ := e.files.Get(context.Background(), id)
	rec.ExpiresAt = time.Now().Add(-time.Minute)
	require.NoError(t, e.files.Put(context.Background(), rec))
	c.do("GET", "/api/v1/files/"+id, nil).fail(404, "file_not_found")
	c.do("GET", "/api/v1/files/"+id+"/download", nil).fail(404, "file_not_found")
}

func TestDownloadFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.upload("report.pdf", []byte("%PDF-1.7"))

	res := c.do("GET", "/api/v1/files/"+id+"/download", nil).status(http.StatusFound)
	require.Equal(t, "https://blobs.test/"+id+"?op=get", res.Header().Get("Location"))
	e.anon().do("GET", "/api/v1/files/"+id+"/download", nil).fail(404, "file_not_found")

	t.Run("a store without presigned downloads streams", func(t *testing.T) {
		e.blobs.noPresignGet = true
		t.Cleanup(func() { e.blobs.noPresignGet = false })
		res := c.do("GET", "/api/v1/files/"+id+"/download", nil).status(http.StatusOK)
		require.Equal(t, "%PDF-1.7", res.Body.String())
		require.Equal(t, "application/pdf", res.Header().Get("Content-Type"))
		require.Equal(t, "8", res.Header().Get("Content-Length"))
		require.Equal(t, `attachment; filename=report.pdf`, res.Header().Get("Content-Disposition"))

		// The record outlived its bytes.
		require.NoError(t, e.blobs.Delete(context.Background(), id))
		c.do("GET", "/api/v1/files/"+id+"/download", nil).fail(404, "file_not_found")
	})
}

func TestNonASCIIFileNameDisposition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *handlers.Config, d *handlers.Deps) {})
	e.blobs.noPresignGet = true
	c := e.anon()
	id := c.upload("résumé \"final\".txt", []byte("cv"))
	res := c.do("GET", "/api/v1/files/"+id+"/download", nil).status(http.StatusOK)
	require.Equal(t, "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22.txt", res.Header().Get("Content-Disposition"))
}
