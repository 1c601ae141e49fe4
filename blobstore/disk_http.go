package blobstore

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the embedded store's presigned URLs: PUT uploads (at most
// the signed max bytes, else 413 file_too_large), GET and HEAD download as an
// attachment. A bad signature or an expired link is 403 forbidden, a missing
// object 404 file_not_found, any other method 405. Errors are JSON
// {"detail", "code"}. An upload is stored with the signed content type; the
// request's Content-Type header is not consulted. It accepts the path with or
// without the /blobs/ prefix, so it can be mounted either way.
func (d *Disk) Handler() http.Handler {
	return http.HandlerFunc(d.serveHTTP)
}

func (d *Disk) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or PUT with a presigned link")
		return
	}
	key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"), "blobs/")
	if ValidateKey(key) != nil {
		writeError(w, http.StatusNotFound, "file_not_found", "file not found")
		return
	}
	q, err := d.verify(key, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
		return
	}
	switch op := q.Get(paramOp); {
	case op == opPut && r.Method == http.MethodPut:
		d.servePut(w, r, key, q.Get(paramMax), q.Get(paramType))
	case op == opGet && r.Method != http.MethodPut:
		d.serveGet(w, r, key, q.Get(paramFileName))
	case op == opPut:
		writeError(w, http.StatusForbidden, "forbidden", "this link is for uploading with PUT only")
	default:
		writeError(w, http.StatusForbidden, "forbidden", "this link is for downloading with GET only")
	}
}

func (d *Disk) servePut(w http.ResponseWriter, r *http.Request, key, maxParam, contentType string) {
	limit, err := strconv.ParseInt(maxParam, 10, 64)
	if err != nil || limit <= 0 {
		writeError(w, http.StatusForbidden, "forbidden", "the link's size limit is not valid")
		return
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "file_too_large",
			"the upload is "+strconv.FormatInt(r.ContentLength, 10)+" bytes; this link allows at most "+maxParam)
		return
	}
	body := &limitedReader{r: r.Body, n: limit}
	err = d.put(r.Context(), key, body, r.ContentLength, contentType)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "file_too_large", "the upload is larger than the "+maxParam+" bytes this link allows")
	case errors.Is(err, ErrSizeMismatch):
		writeError(w, http.StatusBadRequest, "incomplete_body", "the body is shorter than its Content-Length")
	default:
		writeError(w, http.StatusInternalServerError, "internal_error", "could not store the upload")
	}
}

func (d *Disk) serveGet(w http.ResponseWriter, r *http.Request, key, fileName string) {
	f, info, err := d.open(key)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "file_not_found", "file not found")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "could not read the file")
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	h.Set("Content-Disposition", ContentDisposition(fileName))
	// User content served from our own origin must never be rendered or
	// sniffed into something executable.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-cache")
	// ServeContent adds Content-Length, ranges, HEAD and conditional requests.
	http.ServeContent(w, r, "", info.ModTime, f)
}

// limitedReader returns ErrTooLarge once more than n bytes have been read, so
// an oversized upload fails after n+1 bytes instead of filling the disk.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, ErrTooLarge
	}
	return n, err
}

func writeError(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}{detail, code})
}
