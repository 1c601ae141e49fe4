package blobstore_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/blobstore/blobstoretest"
	"github.com/convilyn/turbolane/domain"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// newDisk opens a Disk in a temp dir behind a real HTTP server that serves
// its presigned URLs at /blobs/, as the handlers package mounts it.
func newDisk(t *testing.T, opts ...blobstore.DiskOption) (*blobstore.Disk, string) {
	t.Helper()
	dir := t.TempDir()
	var d *blobstore.Disk
	mux := http.NewServeMux()
	mux.Handle("/blobs/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.Handler().ServeHTTP(w, r) }))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		blobstoretest.Client().CloseIdleConnections()
		srv.Close()
	})
	d, err := blobstore.NewDisk(dir, srv.URL, testSecret, opts...)
	require.NoError(t, err)
	return d, dir
}

func TestDiskConformance(t *testing.T) {
	blobstoretest.RunConformance(t, func(t *testing.T) blobstore.Store {
		d, _ := newDisk(t)
		return d
	})
}

func TestNewDiskValidates(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		dir, base string
		secret    []byte
		opts      []blobstore.DiskOption
	}{
		"empty dir":      {"", "http://x", testSecret, nil},
		"relative url":   {dir, "/files", testSecret, nil},
		"ftp url":        {dir, "ftp://x", testSecret, nil},
		"url with query": {dir, "http://x/?a=b", testSecret, nil},
		"short secret":   {dir, "http://x", []byte("short"), nil},
		"nil clock":      {dir, "http://x", testSecret, []blobstore.DiskOption{blobstore.WithClock(nil)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := blobstore.NewDisk(tc.dir, tc.base, tc.secret, tc.opts...)
			require.Error(t, err)
		})
	}
	d, err := blobstore.NewDisk(dir, "https://files.example.com/", testSecret)
	require.NoError(t, err)
	u, err := d.PresignGet(context.Background(), "file_x", "a.txt", time.Minute)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, "https://files.example.com/blobs/file_x?op=get&exp="), u)
}

// TestDiskPutDoesNotBuffer runs alone (not parallel) so the allocation
// figure is this Put's: a 64 MiB object must go through a small copy buffer.
func TestDiskPutDoesNotBuffer(t *testing.T) {
	d, _ := newDisk(t)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, d.Put(context.Background(), domain.NewFileID(), blobstoretest.NewGenerator(size, 3), -1, ""))
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "bytes allocated while putting 64 MiB")
}

type errorBody struct {
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func decodeError(t *testing.T, r blobstoretest.Response) errorBody {
	t.Helper()
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var e errorBody
	require.NoError(t, json.Unmarshal(r.Body, &e), "%s", r.Body)
	assert.NotEmpty(t, e.Detail)
	return e
}

func TestDiskPresignedPutOverMax(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	ctx := context.Background()
	key := domain.NewFileID()
	p, err := d.PresignPut(ctx, key, "text/plain", 10, time.Minute)
	require.NoError(t, err)

	t.Run("declared length", func(t *testing.T) {
		resp := blobstoretest.Do(t, p.Method, p.URL, p.Headers, []byte("eleven byte"))
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		assert.Equal(t, "file_too_large", decodeError(t, resp).Code)
	})
	t.Run("chunked", func(t *testing.T) {
		req, err := http.NewRequest(p.Method, p.URL, blobstoretest.NewGenerator(1<<20, 1))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		require.Equal(t, int64(0), req.ContentLength, "sent without a length")
		resp, err := blobstoretest.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		var e errorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		assert.Equal(t, "file_too_large", e.Code)
	})
	t.Run("exactly max", func(t *testing.T) {
		resp := blobstoretest.Do(t, p.Method, p.URL, p.Headers, []byte("ten bytes!"))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", resp.Body)
		require.NoError(t, d.Delete(ctx, key))
	})

	_, err = d.Stat(ctx, key)
	require.ErrorIs(t, err, blobstore.ErrNotFound, "nothing stored")
	for _, sub := range []string{"objects", "meta", "tmp"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		require.NoError(t, err)
		assert.Empty(t, entries, "nothing left behind in %s", sub)
	}
}

// clock is a settable clock for expiry tests that must not depend on the
// wall clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func TestDiskHandlerErrors(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	d, _ := newDisk(t, blobstore.WithClock(clk.Now))
	ctx := context.Background()
	key := domain.NewFileID()
	require.NoError(t, d.Put(ctx, key, strings.NewReader("content"), 7, "text/plain"))
	get, err := d.PresignGet(ctx, key, "c.txt", time.Minute)
	require.NoError(t, err)
	put, err := d.PresignPut(ctx, key, "text/plain", 100, time.Minute)
	require.NoError(t, err)

	t.Run("wrong method", func(t *testing.T) {
		for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
			resp := blobstoretest.Do(t, m, get, nil, nil)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
			assert.Equal(t, "GET, HEAD, PUT", resp.Header.Get("Allow"))
			assert.Equal(t, "method_not_allowed", decodeError(t, resp).Code)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		for name, u := range map[string]string{
			"no query":       strings.Split(get, "?")[0],
			"no sig":         strings.Split(get, "&sig=")[0],
			"sig not hex":    strings.Split(get, "&sig=")[0] + "&sig=zz",
			"extra param":    get + "&fn=other.txt",
			"changed name":   strings.Replace(get, "fn=c.txt", "fn=d.txt", 1),
			"put as get op":  strings.Replace(get, "op=get", "op=put", 1),
			"longer expiry":  strings.Replace(get, "exp=", "exp=9", 1),
			"bad key in url": strings.Replace(get, key, "..", 1),
		} {
			resp := blobstoretest.Do(t, http.MethodGet, u, nil, nil)
			if name == "bad key in url" {
				// The path is cleaned or the key refused before any
				// signature check: never a 200.
				require.NotEqual(t, http.StatusOK, resp.StatusCode, name)
				continue
			}
			require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
			e := decodeError(t, resp)
			assert.Equal(t, "forbidden", e.Code, name)
			assert.Contains(t, e.Detail, "signature", name)
		}
	})
	t.Run("wrong op", func(t *testing.T) {
		resp := blobstoretest.Do(t, http.MethodGet, put.URL, nil, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Contains(t, decodeError(t, resp).Detail, "uploading")
	})
	t.Run("head", func(t *testing.T) {
		resp := blobstoretest.Do(t, http.MethodHead, get, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "7", resp.Header.Get("Content-Length"))
		assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		assert.Empty(t, resp.Body)
	})
	t.Run("range", func(t *testing.T) {
		resp := blobstoretest.Do(t, http.MethodGet, get, map[string]string{"Range": "bytes=2-4"}, nil)
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		assert.Equal(t, "nte", string(resp.Body))
	})
	t.Run("missing object", func(t *testing.T) {
		u, err := d.PresignGet(ctx, domain.NewFileID(), "x", time.Minute)
		require.NoError(t, err)
		resp := blobstoretest.Do(t, http.MethodGet, u, nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "file_not_found", decodeError(t, resp).Code)
	})
	t.Run("expired", func(t *testing.T) {
		u, err := d.PresignGet(ctx, key, "c.txt", time.Second)
		require.NoError(t, err)
		p, err := d.PresignPut(ctx, key, "text/plain", 100, time.Second)
		require.NoError(t, err)
		clk.Add(2 * time.Second)
		for _, r := range []blobstoretest.Response{
			blobstoretest.Do(t, http.MethodGet, u, nil, nil),
			blobstoretest.Do(t, p.Method, p.URL, p.Headers, []byte("late")),
		} {
			require.Equal(t, http.StatusForbidden, r.StatusCode)
			e := decodeError(t, r)
			assert.Equal(t, "forbidden", e.Code)
			assert.Contains(t, e.Detail, "expired")
		}
		info, err := d.Stat(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, int64(7), info.Size)
	})
}

func TestDiskHandlerWithoutPrefix(t *testing.T) {
	t.Parallel()
	d, _ := newDisk(t)
	ctx := context.Background()
	key := domain.NewFileID()
	require.NoError(t, d.Put(ctx, key, strings.NewReader("abc"), 3, "text/plain"))
	u, err := d.PresignGet(ctx, key, "a.txt", time.Minute)
	require.NoError(t, err)
	path := strings.TrimPrefix(u[strings.Index(u, "/blobs/"):], "")
	for _, h := range []http.Handler{
		http.StripPrefix("/blobs", d.Handler()),
		http.StripPrefix("/blobs/", d.Handler()),
		d.Handler(),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, "abc", rec.Body.String())
	}
}

func TestDiskSurvivesLostSidecar(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	blobstore.WithoutXattr(d)
	ctx := context.Background()
	key := domain.NewFileID()
	require.NoError(t, d.Put(ctx, key, strings.NewReader("abc"), 3, "text/plain"))
	info, err := d.Stat(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "text/plain", info.ContentType, "without attributes the type is in the sidecar")
	require.NoError(t, os.Remove(filepath.Join(dir, "meta", key+".json")))
	info, err = d.Stat(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, blobstore.DefaultContentType, info.ContentType)
	require.NoError(t, d.Delete(ctx, key))
}

// The content type lives in an attribute of the object's file: no sidecar
// is written, a sidecar of an older version of the object is removed, and
// objects written with sidecars (by an older version of the store, or on a
// file system without attributes) keep their type.
func TestDiskContentTypeAttribute(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	ctx := context.Background()
	sidecar := func(key string) string { return filepath.Join(dir, "meta", key+".json") }
	stat := func(d *blobstore.Disk, key string) string {
		t.Helper()
		info, err := d.Stat(ctx, key)
		require.NoError(t, err)
		rc, ginfo, err := d.Get(ctx, key)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.Equal(t, info.ContentType, ginfo.ContentType)
		return info.ContentType
	}

	key := domain.NewFileID()
	require.NoError(t, d.Put(ctx, key, strings.NewReader("abc"), 3, "image/webp"))
	if !blobstore.UsesXattr(d) {
		t.Skip("the test directory's file system has no user extended attributes")
	}
	assert.Equal(t, "image/webp", stat(d, key))
	_, err := os.Stat(sidecar(key))
	require.ErrorIs(t, err, os.ErrNotExist, "no sidecar when the file system has attributes")

	legacy, err := blobstore.NewDisk(dir, "http://example.com", testSecret)
	require.NoError(t, err)
	blobstore.WithoutXattr(legacy)
	old := domain.NewFileID()
	require.NoError(t, legacy.Put(ctx, old, strings.NewReader("v1"), 2, "text/csv"))
	assert.Equal(t, "text/csv", stat(d, old), "a sidecar object reads back through an attribute store")
	require.NoError(t, d.Put(ctx, old, strings.NewReader("v2"), 2, "application/pdf"))
	assert.Equal(t, "application/pdf", stat(d, old))
	_, err = os.Stat(sidecar(old))
	require.ErrorIs(t, err, os.ErrNotExist, "the old version's sidecar goes with it")

	long := "application/x." + strings.Repeat("a", 300)
	require.NoError(t, d.Put(ctx, key, strings.NewReader("x"), 1, long))
	assert.Equal(t, long, stat(d, key), "a type longer than the first read buffer")

	reopened, err := blobstore.NewDisk(dir, "http://example.com", testSecret)
	require.NoError(t, err)
	assert.Equal(t, long, stat(reopened, key))
	require.NoError(t, d.Delete(ctx, key))
	require.NoError(t, d.Delete(ctx, old))
	_, err = d.Stat(ctx, key)
	require.ErrorIs(t, err, blobstore.ErrNotFound)
}

func TestDiskPingFailsWhenUnwritable(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	require.NoError(t, d.Ping(context.Background()))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "tmp")))
	require.Error(t, d.Ping(context.Background()))
}

func TestDiskReopen(t *testing.T) {
	t.Parallel()
	d, dir := newDisk(t)
	ctx := context.Background()
	key := domain.NewFileID()
	require.NoError(t, d.Put(ctx, key, strings.NewReader("kept"), 4, "text/plain"))
	stale := filepath.Join(dir, "tmp", "data-stale")
	require.NoError(t, os.WriteFile(stale, []byte("crashed upload"), 0o600))
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))

	again, err := blobstore.NewDisk(dir, "http://example.com", testSecret)
	require.NoError(t, err)
	info, err := again.Stat(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "text/plain", info.ContentType)
	_, err = os.Stat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist, "a stale upload is removed on open")
}

// BenchmarkDiskPut puts a 1 KiB object: with the content type in an
// attribute (two syncs) and in a sidecar (four syncs).
func BenchmarkDiskPut(b *testing.B) {
	body := strings.Repeat("x", 1024)
	for _, tc := range []struct {
		name    string
		sidecar bool
	}{{"attribute", false}, {"sidecar", true}} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := blobstore.NewDisk(b.TempDir(), "http://example.com", testSecret)
			require.NoError(b, err)
			if tc.sidecar {
				blobstore.WithoutXattr(d)
			}
			ctx := context.Background()
			for b.Loop() {
				require.NoError(b, d.Put(ctx, domain.NewFileID(), strings.NewReader(body), int64(len(body)), "image/png"))
			}
		})
	}
}
