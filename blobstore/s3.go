package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

var _ Store = (*S3)(nil)

// S3Config says how to reach an S3-compatible service.
type S3Config struct {
	// Endpoint is host:port without scheme, e.g. "127.0.0.1:9000".
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	// Secure selects https.
	Secure bool
	// Region defaults to us-east-1. Knowing it lets presigning work offline
	// instead of asking the service for the bucket's location.
	Region string
	// PublicEndpoint, when set, is the host:port clients use to reach the
	// service (e.g. behind a proxy); presigned URLs name it instead of
	// Endpoint. It uses the same Secure setting.
	PublicEndpoint string
	// PartSize is the multipart chunk for uploads of unknown or large size,
	// and so the memory one upload buffers. Defaults to DefaultPartSize.
	PartSize uint64
}

// DefaultPartSize keeps an upload of unknown size to one 16 MiB buffer:
// minio-go would otherwise size parts for a 5 TiB object (about 537 MiB
// each) and buffer that much per upload. 16 MiB × 10,000 parts still allows
// objects of 156 GiB.
const DefaultPartSize = 16 << 20

// S3 stores objects in one bucket of an S3-compatible service (MinIO) through
// minio-go. Presigned URLs are SigV4 URLs served by the service itself.
type S3 struct {
	client    *minio.Client
	presigner *minio.Client
	transport *http.Transport
	bucket    string
	partSize  uint64
}

// NewS3 connects to the service and creates the bucket if it is missing.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("open s3 blob store: endpoint and bucket are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	newClient := func(endpoint string) (*minio.Client, error) {
		return minio.New(endpoint, &minio.Options{
			Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
			Secure:    cfg.Secure,
			Region:    cfg.Region,
			Transport: transport,
		})
	}
	client, err := newClient(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("open s3 blob store at %s: %w", cfg.Endpoint, err)
	}
	presigner := client
	if cfg.PublicEndpoint != "" {
		if presigner, err = newClient(cfg.PublicEndpoint); err != nil {
			return nil, fmt.Errorf("open s3 blob store: public endpoint %s: %w", cfg.PublicEndpoint, err)
		}
	}
	s := &S3{client: client, presigner: presigner, transport: transport, bucket: cfg.Bucket, partSize: cfg.PartSize}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("open s3 blob store at %s: %w", cfg.Endpoint, err)
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	// Another replica starting at the same time may have won the race.
	if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Close releases idle connections to the service.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// mapErr turns minio-go's "no such key" into ErrNotFound.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if resp := minio.ToErrorResponse(err); resp.Code == minio.NoSuchKey || resp.Code == "NoSuchObject" {
		return ErrNotFound
	}
	return err
}

// Put uploads with PutObject; an unknown size (-1) becomes a streaming
// multipart upload that buffers one part at a time.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if size < -1 {
		return fmt.Errorf("put blob %s: size %d is not valid", key, size)
	}
	src := &countingReader{r: ctxReader{ctx: ctx, r: r}}
	info, err := s.client.PutObject(ctx, s.bucket, key, src, size, minio.PutObjectOptions{
		ContentType: contentTypeOrDefault(contentType),
		PartSize:    s.partSize,
	})
	if err != nil {
		// net/http refuses a body whose length differs from the declared
		// one; say so in our own terms.
		if size >= 0 && (src.n > size || src.eof && src.n < size) {
			err = fmt.Errorf("%w: declared %d bytes, read %d: %w", ErrSizeMismatch, size, src.n, err)
		}
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if size >= 0 && info.Size != size {
		return fmt.Errorf("put blob %s: %w: declared %d bytes, stored %d", key, ErrSizeMismatch, size, info.Size)
	}
	// A multipart upload reads exactly size bytes and cannot notice a longer
	// reader; the truncated object is already stored, but the caller learns
	// its size was wrong.
	if size >= 0 && !src.eof {
		var one [1]byte
		if n, _ := io.ReadFull(src, one[:]); n > 0 {
			return fmt.Errorf("put blob %s: %w: reader is longer than the declared %d bytes", key, ErrSizeMismatch, size)
		}
	}
	return nil
}

type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// Get fetches the object; the first response is read before returning so a
// missing key is reported here rather than on the first Read.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, fmt.Errorf("get blob %s: %w", key, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, fmt.Errorf("get blob %s: %w", key, mapErr(err))
	}
	oi, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, Info{}, fmt.Errorf("get blob %s: %w", key, mapErr(err))
	}
	return obj, infoOf(oi), nil
}

func infoOf(oi minio.ObjectInfo) Info {
	return Info{Size: oi.Size, ContentType: contentTypeOrDefault(oi.ContentType), ModTime: oi.LastModified}
}

// Stat asks for the object's metadata with a HEAD request.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", key, mapErr(err))
	}
	return infoOf(oi), nil
}

// Delete removes the object; S3 reports success for a missing key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete blob %s: %w", key, mapErr(err))
	}
	return nil
}

// PresignPut signs a PUT URL with the Content-Type header included in the
// signature, so the client must send exactly that header (returned in
// Headers) and the object gets that type. maxSize cannot be enforced by S3 on
// a presigned PUT; the caller must check the stored size with Stat.
func (s *S3) PresignPut(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (Presigned, error) {
	if err := ValidateKey(key); err != nil {
		return Presigned{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	if err := validateTTL(ttl); err != nil {
		return Presigned{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	if maxSize <= 0 {
		return Presigned{}, fmt.Errorf("presign put %s: max size %d must be positive", key, maxSize)
	}
	ct := contentTypeOrDefault(contentType)
	signedAt := time.Now()
	u, err := s.presigner.PresignHeader(ctx, http.MethodPut, s.bucket, key, ttl, nil, http.Header{"Content-Type": {ct}})
	if err != nil {
		return Presigned{}, fmt.Errorf("presign put %s: %w", key, err)
	}
	return Presigned{
		URL:     u.String(),
		Method:  http.MethodPut,
		Headers: map[string]string{"Content-Type": ct},
		// SigV4 dates have whole seconds, so the link dies up to a second
		// before signedAt+ttl.
		ExpiresAt: signedAt.Truncate(time.Second).Add(ttl).UTC(),
	}, nil
}

// PresignGet signs a GET URL whose response carries an attachment
// Content-Disposition naming fileName (response-content-disposition).
func (s *S3) PresignGet(ctx context.Context, key, fileName string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	if err := validateTTL(ttl); err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	params := url.Values{"response-content-disposition": {ContentDisposition(fileName)}}
	u, err := s.presigner.PresignedGetObject(ctx, s.bucket, key, ttl, params)
	if err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	return u.String(), nil
}

// Ping checks that the service answers and the bucket exists.
func (s *S3) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("ping s3 blob store: %w", err)
	}
	if !ok {
		return fmt.Errorf("ping s3 blob store: bucket %s does not exist", s.bucket)
	}
	return nil
}
