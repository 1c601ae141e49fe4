package blobstore_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convilyn/turbolane/blobstore"
)

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"file_0123456789abcdefghjkmnpqrs", ".", "..", "a/b", "a..b", ".hidden", "x.y-z_1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if blobstore.ValidateKey(key) != nil {
			return
		}
		// Whatever is accepted is a single, plain path element.
		if filepath.Base(key) != key || filepath.Clean(key) != key || strings.Contains(key, "..") || len(key) > blobstore.MaxKeyLen {
			t.Fatalf("accepted key %q is not a plain file name", key)
		}
	})
}

// FuzzDiskHandler throws arbitrary paths and queries at the handler: it must
// never panic and never serve or store anything without a valid signature.
func FuzzDiskHandler(f *testing.F) {
	d, err := blobstore.NewDisk(f.TempDir(), "http://example.com", testSecret)
	if err != nil {
		f.Fatal(err)
	}
	h := d.Handler()
	f.Add("GET", "/blobs/file_x", "op=get&exp=99999999999&fn=a&sig=00")
	f.Add("PUT", "/blobs/file_x", "op=put&exp=99999999999&max=10&ct=text%2Fplain&sig=zz")
	f.Add("GET", "/blobs/../x", "")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		switch method {
		case http.MethodGet, http.MethodPut, http.MethodHead, http.MethodPost:
		default:
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader("body"))
		req.Method = method
		req.URL.Path = path
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 400 {
			t.Fatalf("%s %s?%s answered %d without a valid signature", method, path, query, rec.Code)
		}
	})
}
