package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Files is the page's file tree: index.html plus the assets it links.
var Files fs.FS = mustSub(static, "static")

// AssetsPrefix is the URL path under which the page's files are served.
const AssetsPrefix = "/assets/"

// ContentSecurityPolicy is sent with every file: the page loads nothing but
// its own files and talks to nothing but its own origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

type file struct {
	body        []byte
	etag        string
	contentType string
}

// handler serves the embedded files from memory, with strong ETags so that
// a browser revalidates cheaply.
type handler struct {
	files map[string]file // by URL path
}

var _ http.Handler = (*handler)(nil)

// Handler returns the http.Handler of the page: GET or HEAD "/" is
// index.html and "/assets/<name>" the other files; any other path is 404.
func Handler() http.Handler {
	h := &handler{files: map[string]file{}}
	err := fs.WalkDir(Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		f := file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		if p == "index.html" {
			h.files["/"] = f
		} else {
			h.files[AssetsPrefix+p] = f
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("web: read embedded files: %v", err)) // the embed is fixed at build time
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	if strings.HasPrefix(f.contentType, "text/html") {
		hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
		hdr.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return sub
}
