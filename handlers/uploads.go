package handlers

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convilyn/turbolane/domain"
)

// multipartOverhead is what a multipart body may carry besides the file's
// bytes (boundaries, part headers, small extra fields).
const multipartOverhead = 1 << 20

type presignRequest struct {
	FileName    string `json:"fileName"`
	FileSize    *int64 `json:"fileSize"`
	ContentType string `json:"contentType"`
}

type presignResponse struct {
	FileID    string            `json:"fileId"`
	UploadURL string            `json:"uploadUrl"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt string            `json:"expiresAt"`
}

type confirmRequest struct {
	FileID string `json:"fileId"`
}

// cleanFileName keeps the base name of what a client calls its file, so a
// name can never smuggle a path, and refuses names that are empty, too long
// or carry control characters.
func cleanFileName(name string) (string, error) {
	name = strings.ReplaceAll(name, `\`, "/")
	name = strings.TrimSpace(path.Base(name))
	switch {
	case name == "" || name == "." || name == ".." || name == "/":
		return "", domain.Validationf("fileName must name a file")
	case len(name) > 255:
		return "", domain.Validationf("fileName must be at most 255 bytes, got %d", len(name))
	case !utf8.ValidString(name):
		return "", domain.Validationf("fileName must be UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", domain.Validationf("fileName must not contain control characters")
	}
	return name, nil
}

// contentTypeFor validates a declared content type or guesses one from the
// file name's extension.
func contentTypeFor(declared, name string) (string, error) {
	declared = strings.TrimSpace(declared)
	if declared == "" || declared == "application/octet-stream" {
		if g := mime.TypeByExtension(strings.ToLower(path.Ext(name))); g != "" {
			return g, nil
		}
		return "application/octet-stream", nil
	}
	mt, params, err := mime.ParseMediaType(declared)
	if err != nil || len(declared) > 255 {
		return "", domain.Validationf("contentType %q is not a media type", declared)
	}
	return mime.FormatMediaType(mt, params), nil
}

func (s *server) presignUpload(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req presignRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	name, ct, err := req.validate()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.PlanLimits.Check(id.Plan, *req.FileSize); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now().UTC()
	f := domain.File{
		ID: domain.NewFileID(), UserID: id.UserID, Name: name, Size: *req.FileSize, MimeType: ct,
		Kind: domain.FileUpload, CreatedAt: now, ExpiresAt: now.Add(s.cfg.UploadRetention),
	}
	// The embedded store refuses a zero maxSize; an empty file still needs a link.
	maxSize := max(f.Size, 1)
	ps, err := s.deps.Blobs.PresignPut(r.Context(), f.ID, ct, maxSize, s.cfg.UploadURLTTL)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("presign upload of %s: %w", f.ID, err))
		return
	}
	if err := s.deps.Files.Put(r.Context(), f); err != nil {
		s.writeError(w, r, fmt.Errorf("record upload %s: %w", f.ID, err))
		return
	}
	headers := ps.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	writeJSON(w, http.StatusOK, presignResponse{
		FileID: f.ID, UploadURL: ps.URL, Method: ps.Method, Headers: headers, ExpiresAt: timestamp(ps.ExpiresAt),
	})
}

func (req presignRequest) validate() (name, contentType string, err error) {
	if name, err = cleanFileName(req.FileName); err != nil {
		return "", "", err
	}
	if req.FileSize == nil {
		return "", "", domain.Validationf("fileSize is required")
	}
	if *req.FileSize < 0 {
		return "", "", domain.Validationf("fileSize must not be negative, got %d", *req.FileSize)
	}
	if contentType, err = contentTypeFor(req.ContentType, name); err != nil {
		return "", "", err
	}
	return name, contentType, nil
}

// confirmUpload checks that a presigned upload arrived and is within the
// plan (S3 cannot enforce the size of a presigned PUT), then makes the file
// usable.
func (s *server) confirmUpload(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req confirmRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.FileID == "" {
		s.writeError(w, r, domain.Validationf("fileId is required"))
		return
	}
	ctx := r.Context()
	if !domain.ValidID("file", req.FileID) {
		s.writeError(w, r, domain.ErrFileNotFound)
		return
	}
	f, err := s.deps.Files.Get(ctx, req.FileID)
	switch {
	case errors.Is(err, domain.ErrFileNotFound):
		s.writeError(w, r, domain.ErrFileNotFound)
		return
	case err != nil:
		s.writeError(w, r, fmt.Errorf("get file %s: %w", req.FileID, err))
		return
	case f.UserID != id.UserID || f.Kind != domain.FileUpload || (!f.ExpiresAt.IsZero() && !s.now().Before(f.ExpiresAt)):
		s.writeError(w, r, domain.ErrFileNotFound)
		return
	case f.Confirmed:
		writeJSON(w, http.StatusOK, fileOut(f)) // confirming twice is harmless
		return
	}
	info, err := s.deps.Blobs.Stat(ctx, f.ID)
	switch {
	case errors.Is(err, domain.ErrFileNotFound):
		s.writeError(w, r, domain.ErrFileNotFound.WithMessage("the upload of %s has not arrived yet; send the file to its uploadUrl first", f.ID))
		return
	case err != nil:
		s.writeError(w, r, fmt.Errorf("stat upload %s: %w", f.ID, err))
		return
	}
	if err := s.cfg.PlanLimits.Check(id.Plan, info.Size); err != nil {
		s.discard(r, f.ID)
		s.writeError(w, r, err)
		return
	}
	f.Size, f.Confirmed = info.Size, true
	if info.ContentType != "" && info.ContentType != "application/octet-stream" {
		f.MimeType = info.ContentType
	}
	if err := s.deps.Files.Put(ctx, f); err != nil {
		s.writeError(w, r, fmt.Errorf("confirm upload %s: %w", f.ID, err))
		return
	}
	writeJSON(w, http.StatusOK, fileOut(f))
}

// discard deletes a file's bytes and record, logging what it could not.
func (s *server) discard(r *http.Request, fileID string) {
	if err := s.deps.Blobs.Delete(r.Context(), fileID); err != nil {
		s.log.Warn("delete blob", "file", fileID, "err", err)
	}
	if err := s.deps.Files.Delete(r.Context(), fileID); err != nil && !errors.Is(err, domain.ErrFileNotFound) {
		s.log.Warn("delete file record", "file", fileID, "err", err)
	}
}

// errBadMultipart is the 400 for a body that is not the multipart form the
// one-step upload expects.
var errBadMultipart = &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_multipart", Message: "the request must be multipart/form-data with a field named file"}

// errOverLimit marks a multipart file that went past the plan limit.
var errOverLimit = errors.New("upload exceeds the plan limit")

// limitedReader counts bytes and fails once more than max have been read, so
// that an oversized upload stops at the limit instead of being stored.
type limitedReader struct {
	r        io.Reader
	n, max   int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errOverLimit
	}
	if rest := l.max + 1 - l.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.exceeded = true
		return n, errOverLimit
	}
	return n, err
}

// upload stores the multipart field "file" in one step, streaming it to the
// blob store: the body is never buffered whole, in memory or on disk.
func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := s.cfg.PlanLimits.MaxFileSize(id.Plan)
	if r.ContentLength > limit+multipartOverhead {
		s.writeError(w, r, s.cfg.PlanLimits.Check(id.Plan, r.ContentLength-multipartOverhead))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+multipartOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		s.writeError(w, r, errBadMultipart)
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			s.writeError(w, r, domain.Validationf("the multipart body has no field named file"))
			return
		}
		if err != nil {
			s.writeError(w, r, multipartError(err))
			return
		}
		if part.FormName() != "file" {
			_, _ = io.Copy(io.Discard, part)
			continue
		}
		s.storePart(w, r, id, part)
		return
	}
}

func (s *server) storePart(w http.ResponseWriter, r *http.Request, id identity, part *multipart.Part) {
	fileName := part.FileName()
	if fileName == "" {
		fileName = "upload"
	}
	name, err := cleanFileName(fileName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct, err := contentTypeFor(part.Header.Get("Content-Type"), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now().UTC()
	f := domain.File{
		ID: domain.NewFileID(), UserID: id.UserID, Name: name, MimeType: ct, Kind: domain.FileUpload,
		Confirmed: true, CreatedAt: now, ExpiresAt: now.Add(s.cfg.UploadRetention),
	}
	lr := &limitedReader{r: part, max: s.cfg.PlanLimits.MaxFileSize(id.Plan)}
	err = s.deps.Blobs.Put(r.Context(), f.ID, lr, -1, ct)
	if lr.exceeded {
		// Nothing may be left behind: the store should not have kept a
		// partial object, but delete anyway in case it did.
		if derr := s.deps.Blobs.Delete(r.Context(), f.ID); derr != nil {
			s.log.Warn("delete oversized upload", "file", f.ID, "err", derr)
		}
		s.writeError(w, r, s.cfg.PlanLimits.Check(id.Plan, lr.n))
		return
	}
	if err != nil {
		_ = s.deps.Blobs.Delete(r.Context(), f.ID)
		s.writeError(w, r, multipartError(fmt.Errorf("store upload %s: %w", f.ID, err)))
		return
	}
	f.Size = lr.n
	if err := s.deps.Files.Put(r.Context(), f); err != nil {
		_ = s.deps.Blobs.Delete(r.Context(), f.ID)
		s.writeError(w, r, fmt.Errorf("record upload %s: %w", f.ID, err))
		return
	}
	writeJSON(w, http.StatusCreated, fileOut(f))
}

// multipartError classifies a failure reading the multipart body: a body
// over the byte limit is 413, a malformed body 400, anything else passes on.
func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return domain.ErrFileTooLarge.WithMessage("the upload is larger than your plan allows")
	}
	var de *domain.Error
	if errors.As(err, &de) || errors.Is(err, io.ErrUnexpectedEOF) {
		if de != nil {
			return err
		}
		return errBadMultipart.WithMessage("the multipart body ended early")
	}
	if strings.Contains(err.Error(), "multipart") {
		return errBadMultipart.WithMessage("the multipart body is malformed")
	}
	return err
}
