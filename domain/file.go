package domain

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// FileKind says why a file exists.
type FileKind string

// File kinds.
const (
	FileUpload FileKind = "upload"
	FileResult FileKind = "result"
)

// File is a stored file's record. The bytes live in the blob store under the
// file's ID; the record says who owns them and when they expire.
type File struct {
	ID        string    `json:"fileId"`
	UserID    string    `json:"userId"`
	Name      string    `json:"fileName"`
	Size      int64     `json:"fileSize"`
	MimeType  string    `json:"mimeType"`
	Kind      FileKind  `json:"kind"`
	JobID     string    `json:"jobId,omitempty"`
	Confirmed bool      `json:"confirmed"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when the retention sweeper deletes the file; a job that
	// uses an upload clears it until the job's results expire.
	ExpiresAt time.Time `json:"expiresAt"`
}

// Usable reports whether the file may be read by user now.
func (f File) Usable(user string, now time.Time) bool {
	return f.ID != "" && f.UserID == user && f.Confirmed && (f.ExpiresAt.IsZero() || now.Before(f.ExpiresAt))
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix_ followed by 26 random base32 characters (128 bits).
func NewID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// NewJobID returns a fresh job id (job_…).
func NewJobID() string { return NewID("job") }

// NewFileID returns a fresh file id (file_…).
func NewFileID() string { return NewID("file") }

// ValidID reports whether id looks like an id with the given prefix, so that
// hostile ids never reach a subject filter or an object key.
func ValidID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz", c) {
			return false
		}
	}
	return true
}
