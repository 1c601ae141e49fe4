package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/convilyn/turbolane/domain"
)

// fileJSON is the File of the contract, exactly.
type fileJSON struct {
	FileID    string `json:"fileId"`
	FileName  string `json:"fileName"`
	FileSize  int64  `json:"fileSize"`
	MimeType  string `json:"mimeType"`
	CreatedAt string `json:"createdAt"`
}

func fileOut(f domain.File) fileJSON {
	return fileJSON{FileID: f.ID, FileName: f.Name, FileSize: f.Size, MimeType: f.MimeType, CreatedAt: timestamp(f.CreatedAt)}
}

// usableFile returns the caller's confirmed, unexpired file; anything else,
// including another user's file, is file_not_found.
func (s *server) usableFile(ctx context.Context, userID, fileID string) (domain.File, error) {
	if !domain.ValidID("file", fileID) {
		return domain.File{}, domain.ErrFileNotFound
	}
	f, err := s.deps.Files.Get(ctx, fileID)
	switch {
	case errors.Is(err, domain.ErrFileNotFound):
		return domain.File{}, domain.ErrFileNotFound
	case err != nil:
		return domain.File{}, fmt.Errorf("get file %s: %w", fileID, err)
	case !f.Usable(userID, s.now()):
		return domain.File{}, domain.ErrFileNotFound
	}
	return f, nil
}

func (s *server) getFile(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := s.usableFile(r.Context(), id.UserID, chi.URLParam(r, "file_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fileOut(f))
}

// downloadFile redirects to a presigned URL when the blob store hands one
// out, so that bytes bypass the API; otherwise it streams the object.
func (s *server) downloadFile(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := s.usableFile(r.Context(), id.UserID, chi.URLParam(r, "file_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if url, err := s.deps.Blobs.PresignGet(r.Context(), f.ID, f.Name, s.cfg.DownloadURLTTL); err == nil && url != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, url, http.StatusFound)
		return
	} else if err != nil {
		s.log.Warn("presign download failed; streaming instead", "file", f.ID, "err", err)
	}
	rc, info, err := s.deps.Blobs.Get(r.Context(), f.ID)
	if err != nil {
		if errors.Is(err, domain.ErrFileNotFound) {
			err = domain.ErrFileNotFound.WithMessage("the file's bytes are gone")
		}
		s.writeError(w, r, fmt.Errorf("open file %s: %w", f.ID, err))
		return
	}
	defer rc.Close()
	ct := info.ContentType
	if ct == "" {
		ct = f.MimeType
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.Header().Set("Content-Disposition", attachment(f.Name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Info("file download cut short", "file", f.ID, "err", err)
	}
}

// attachment is a Content-Disposition header that survives any file name
// (RFC 2231 encoding for non-ASCII).
func attachment(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// timestamp formats t as RFC 3339 UTC.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// optTimestamp is timestamp for optional times: nil stays null.
func optTimestamp(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := timestamp(*t)
	return &s
}
