package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// Store keeps objects under keys. Implementations are safe for concurrent
// use by multiple goroutines.
type Store interface {
	// Put stores the bytes of r under key, replacing any existing object
	// only once all bytes have arrived: a failed or cancelled Put leaves the
	// previous object (or none) in place. size is the exact number of bytes
	// r yields, or -1 when unknown; a reader that yields a different number
	// of bytes than a non-negative size is an error. An empty contentType is
	// stored as application/octet-stream. It returns ErrInvalidKey for a bad
	// key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error

	// Get opens the object for streaming; the caller must close the reader.
	// It returns ErrNotFound when there is no such object and ErrInvalidKey
	// for a bad key.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)

	// Stat describes the object without reading it. It returns ErrNotFound
	// when there is no such object and ErrInvalidKey for a bad key.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes the object. Deleting a missing object is not an error.
	// It returns ErrInvalidKey for a bad key.
	Delete(ctx context.Context, key string) error

	// PresignPut returns a URL through which a client can upload the object
	// without credentials until ttl has passed. The client must use the
	// returned Method and send every returned header. maxSize (> 0) is the
	// largest body the caller accepts; the embedded store enforces it, S3
	// cannot on a presigned PUT, so callers must check the real size
	// afterwards with Stat. ttl must be between one second and seven days.
	// It returns ErrInvalidKey for a bad key.
	PresignPut(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (Presigned, error)

	// PresignGet returns a URL from which a client can download the object
	// without credentials until ttl has passed; the response carries a
	// Content-Disposition attachment header naming fileName. It does not
	// check that the object exists. ttl must be between one second and seven
	// days. It returns ErrInvalidKey for a bad key.
	PresignGet(ctx context.Context, key, fileName string, ttl time.Duration) (string, error)

	// Ping reports whether the store is reachable and writable (Disk) or its
	// bucket exists (S3).
	Ping(ctx context.Context) error
}

// Info describes a stored object.
type Info struct {
	Size        int64
	ContentType string
	ModTime     time.Time
}

// Presigned is a presigned upload: the client sends Method to URL with
// Headers until ExpiresAt.
type Presigned struct {
	URL       string
	Method    string
	Headers   map[string]string
	ExpiresAt time.Time
}

// Errors callers branch on.
var (
	// ErrNotFound means there is no object under the key. It matches
	// domain.ErrFileNotFound under errors.Is, so the HTTP layer maps it to
	// 404 file_not_found without knowing this package.
	ErrNotFound error = domain.ErrFileNotFound.WithMessage("no object under this key")

	// ErrInvalidKey means the key is empty, longer than MaxKeyLen, contains
	// a character outside [A-Za-z0-9_.-], or is a path element such as "."
	// or contains "..".
	ErrInvalidKey = errors.New("invalid object key")

	// ErrSizeMismatch means a reader yielded a different number of bytes
	// than the size declared for it.
	ErrSizeMismatch = errors.New("object size does not match the declared size")

	// ErrTooLarge means an upload through a presigned URL sent more bytes
	// than the URL allows.
	ErrTooLarge error = domain.ErrFileTooLarge.WithMessage("the upload is larger than this link allows")
)

// MaxKeyLen is the longest key accepted.
const MaxKeyLen = 128

// DefaultContentType is stored when a Put or PresignPut names no content type.
const DefaultContentType = "application/octet-stream"

// TTL bounds for presigned URLs. S3's SigV4 refuses anything outside them, so
// the embedded store applies the same bounds and callers see one behaviour.
const (
	MinTTL = time.Second
	MaxTTL = 7 * 24 * time.Hour
)

// ValidateKey returns nil when key is a valid object key, otherwise an error
// wrapping ErrInvalidKey. Keys become file names in the embedded store and
// object names in S3, so anything that could be read as a path is refused.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen || key == "." {
		return fmt.Errorf("%w: %q", ErrInvalidKey, truncate(key))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok || c == '.' && i+1 < len(key) && key[i+1] == '.' {
			return fmt.Errorf("%w: %q", ErrInvalidKey, truncate(key))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > MaxKeyLen+8 {
		return s[:MaxKeyLen] + "…"
	}
	return s
}

func validateTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("presigned url lifetime %s is outside [%s, %s]", ttl, MinTTL, MaxTTL)
	}
	return nil
}

func contentTypeOrDefault(ct string) string {
	if ct == "" {
		return DefaultContentType
	}
	return ct
}

// ctxReader fails a streaming copy as soon as ctx is done, so a cancelled
// upload stops at the next read instead of draining the whole body.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
