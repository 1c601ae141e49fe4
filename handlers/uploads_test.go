package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestPresignAndConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	res := c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": `C:\Users\me\photo.JPG`, "fileSize": 500}).status(http.StatusOK)
	conform(t, "PresignResponse", res.Body.Bytes())
	var p struct {
		FileID, UploadURL, Method, ExpiresAt string
		Headers                              map[string]string
	}
	res.decode(&p)
	require.True(t, domain.ValidID("file", p.FileID))
	require.Equal(t, "PUT", p.Method)
	require.Equal(t, "image/jpeg", p.Headers["Content-Type"], "the content type is guessed from the extension")
	require.Contains(t, p.UploadURL, p.FileID)
	rec, err := e.files.Get(t.Context(), p.FileID)
	require.NoError(t, err)
	require.Equal(t, "photo.JPG", rec.Name, "only the base name is kept")
	require.False(t, rec.Confirmed)
	require.Equal(t, domain.FileUpload, rec.Kind)
	require.WithinDuration(t, rec.CreatedAt.Add(24*time.Hour), rec.ExpiresAt, time.Second)

	// Not usable before confirmation; confirming before the bytes arrive is
	// a 404 that says so.
	c.do("GET", "/api/v1/files/"+p.FileID, nil).fail(404, "file_not_found")
	nf := c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID})
	nf.fail(404, "file_not_found")
	require.Contains(t, nf.Body.String(), "not arrived")

	e.blobs.put(p.FileID, []byte("jpeg!"), "image/jpeg")
	e.anon().do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).fail(404, "file_not_found")
	res = c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).status(http.StatusOK)
	conform(t, "File", res.Body.Bytes())
	var f map[string]any
	res.decode(&f)
	require.Equal(t, p.FileID, f["fileId"])
	require.Equal(t, "photo.JPG", f["fileName"])
	require.EqualValues(t, 5, f["fileSize"], "the real size replaces the declared one")
	require.Equal(t, "image/jpeg", f["mimeType"])
	// Confirming twice is harmless.
	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).status(http.StatusOK)
	c.do("GET", "/api/v1/files/"+p.FileID, nil).status(http.StatusOK)
}

func TestPresignRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"over the plan", map[string]any{"fileName": "a.bin", "fileSize": 1001}, 413, "file_too_large"},
		{"not json", `{`, 400, "invalid_json"},
		{"fileSize a string", `{"fileName": "a", "fileSize": "10"}`, 400, "invalid_json"},
		{"fileSize a fraction", `{"fileName": "a", "fileSize": 1.5}`, 400, "invalid_json"},
		{"negative fileSize", map[string]any{"fileName": "a", "fileSize": -1}, 422, "validation_error"},
		{"missing fileSize", map[string]any{"fileName": "a"}, 422, "validation_error"},
		{"missing fileName", map[string]any{"fileSize": 1}, 422, "validation_error"},
		{"fileName only a path", map[string]any{"fileName": "../", "fileSize": 1}, 422, "validation_error"},
		{"fileName too long", map[string]any{"fileName": strings.Repeat("a", 256), "fileSize": 1}, 422, "validation_error"},
		{"fileName with a newline", map[string]any{"fileName": "a\nb", "fileSize": 1}, 422, "validation_error"},
		{"bad contentType", map[string]any{"fileName": "a", "fileSize": 1, "contentType": "not a type"}, 422, "validation_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.do("POST", "/api/v1/upload/presign", tt.body).fail(tt.status, tt.code)
		})
	}
	require.Empty(t, e.files.files, "no rejected presign may leave a record")

	// An empty file still gets a link; a declared content type is kept.
	var p struct{ Headers map[string]string }
	c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "empty", "fileSize": 0, "contentType": "text/plain; charset=utf-8"}).status(http.StatusOK).decode(&p)
	require.Equal(t, "text/plain; charset=utf-8", p.Headers["Content-Type"])
}

func TestConfirmOverPlanDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	var p struct{ FileID string }
	c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "a.bin", "fileSize": 10}).status(http.StatusOK).decode(&p)
	// S3 cannot enforce the size of a presigned PUT: the client sent more.
	e.blobs.put(p.FileID, make([]byte, 1001), "application/octet-stream")
	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": p.FileID}).fail(413, "file_too_large")
	require.False(t, e.blobs.has(p.FileID))
	require.False(t, e.files.has(p.FileID))

	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": domain.NewFileID()}).fail(404, "file_not_found")
	c.do("POST", "/api/v1/upload/confirm", map[string]any{"fileId": "file_x/../y"}).fail(404, "file_not_found")
	c.do("POST", "/api/v1/upload/confirm", map[string]any{}).fail(422, "validation_error")
	c.do("POST", "/api/v1/upload/confirm", `{"fileId": 3}`).fail(400, "invalid_json")
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	res := c.multipart("file", "../../notes.txt", "", []byte("hello")).status(http.StatusCreated)
	conform(t, "File", res.Body.Bytes())
	var f map[string]any
	res.decode(&f)
	require.Len(t, f, 5)
	require.Equal(t, "notes.txt", f["fileName"])
	require.EqualValues(t, 5, f["fileSize"])
	require.Equal(t, "text/plain; charset=utf-8", f["mimeType"])
	id := f["fileId"].(string)
	require.True(t, e.blobs.has(id))
	rec, _ := e.files.Get(t.Context(), id)
	require.True(t, rec.Confirmed)

	res = c.multipart("file", "pic", "image/png", []byte("x")).status(http.StatusCreated)
	res.decode(&f)
	require.Equal(t, "image/png", f["mimeType"], "a part's declared type wins over guessing")

	t.Run("exactly at the plan limit", func(t *testing.T) {
		c.multipart("file", "max.bin", "", make([]byte, 1000)).status(http.StatusCreated)
	})
	t.Run("over the plan limit leaves nothing behind", func(t *testing.T) {
		before := len(e.blobs.objects)
		records := len(e.files.files)
		c.multipart("file", "big.bin", "", make([]byte, 1001)).fail(413, "file_too_large")
		require.Len(t, e.blobs.objects, before)
		require.Len(t, e.files.files, records)
	})
	t.Run("a paid plan allows more", func(t *testing.T) {
		e.user("gina", domain.PlanFree).multipart("file", "big.bin", "", make([]byte, 4000)).status(http.StatusCreated)
	})
	t.Run("Content-Length far over the limit is refused before reading", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/v1/upload", strings.NewReader("x"))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		req.ContentLength = 10 << 20
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		(&response{t: t, ResponseRecorder: rec}).fail(413, "file_too_large")
	})
	t.Run("no file field", func(t *testing.T) {
		c.multipart("document", "a.txt", "", []byte("x")).fail(422, "validation_error")
	})
	t.Run("not multipart", func(t *testing.T) {
		c.do("POST", "/api/v1/upload", `{"file": "x"}`).fail(400, "invalid_multipart")
	})
	t.Run("truncated multipart", func(t *testing.T) {
		c.do("POST", "/api/v1/upload", "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc", "Content-Type", "multipart/form-data; boundary=x").fail(400, "invalid_multipart")
	})
}
