package handlers_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestDownloadZip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	done, queued := c.createJob(), c.createJob()
	foreign := e.anon().createJob()
	r1 := domain.ResultFile{FileID: domain.NewFileID(), FileName: "page.png", MimeType: "image/png", SizeBytes: 10}
	r2 := domain.ResultFile{FileID: domain.NewFileID(), FileName: "page.png", MimeType: "image/png", SizeBytes: 10}
	e.complete(done, r1, r2)
	e.complete(foreign, domain.ResultFile{FileID: domain.NewFileID(), FileName: "secret.png"})

	res := c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": []string{done, queued, foreign, done}}).status(http.StatusOK)
	require.Equal(t, "application/zip", res.Header().Get("Content-Type"))
	require.Contains(t, res.Header().Get("Content-Disposition"), "attachment")

	zr, err := zip.NewReader(bytes.NewReader(res.Body.Bytes()), int64(res.Body.Len()))
	require.NoError(t, err)
	entries := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		rc.Close()
		entries[f.Name] = string(b)
	}
	require.Equal(t, "result of page.png", entries[done+"/page.png"])
	require.Equal(t, "result of page.png", entries[done+"/page-2.png"], "same-named results do not overwrite each other")
	require.Len(t, entries, 3)

	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(entries["manifest.json"]), &m))
	conform(t, "DownloadManifest", []byte(entries["manifest.json"]))
	require.Equal(t, []any{map[string]any{"jobId": done, "files": []any{"page.png", "page-2.png"}}}, m["included"])
	skipped := m["skipped"].([]any)
	require.Len(t, skipped, 2)
	require.Equal(t, queued, skipped[0].(map[string]any)["jobId"])
	require.Contains(t, skipped[0].(map[string]any)["reason"], "not_completed")
	require.Equal(t, foreign, skipped[1].(map[string]any)["jobId"])
	require.Equal(t, "not_found", skipped[1].(map[string]any)["reason"], "a foreign job is skipped as not found")
}

func TestDownloadZipRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	queued := c.createJob()
	foreign := e.anon().createJob()
	e.complete(foreign)

	c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": []string{queued, foreign, "job_bogus"}}).fail(404, "no_completed_jobs")
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = domain.NewJobID()
	}
	c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": ids}).fail(422, "validation_error")
	c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": []string{}}).fail(422, "validation_error")
	c.do("POST", "/api/v1/jobs/download", `{"jobIds": "job_x"}`).fail(400, "invalid_json")
	c.do("POST", "/api/v1/jobs/download", `{"jobIds": [`).fail(400, "invalid_json")
}

func TestDownloadZipMissingBlob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	r1 := domain.ResultFile{FileID: domain.NewFileID(), FileName: "a.png"}
	r2 := domain.ResultFile{FileID: domain.NewFileID(), FileName: "b.png"}
	e.complete(id, r1, r2)
	require.NoError(t, e.blobs.Delete(t.Context(), r1.FileID))

	res := c.do("POST", "/api/v1/jobs/download", map[string]any{"jobIds": []string{id}}).status(http.StatusOK)
	zr, err := zip.NewReader(bytes.NewReader(res.Body.Bytes()), int64(res.Body.Len()))
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{id + "/b.png", "manifest.json"}, names, "a vanished result is left out, not an empty entry")
}
