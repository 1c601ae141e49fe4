package blobstore_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/blobstore/blobstoretest"
	"github.com/convilyn/turbolane/blobstore/miniotest"
)

// TestS3Conformance runs the suite against a real MinIO server; every
// subtest gets its own bucket on the one server, which NewS3 creates.
func TestS3Conformance(t *testing.T) {
	cfg := miniotest.Start(t)
	var n atomic.Int64
	blobstoretest.RunConformance(t, func(t *testing.T) blobstore.Store {
		c := cfg
		c.Bucket = fmt.Sprintf("conformance-%d", n.Add(1))
		s, err := blobstore.NewS3(context.Background(), c)
		require.NoError(t, err)
		t.Cleanup(func() {
			blobstoretest.Client().CloseIdleConnections()
			_ = s.Close()
		})
		return s
	})
}

func TestNewS3(t *testing.T) {
	cfg := miniotest.Start(t)
	ctx := context.Background()

	_, err := blobstore.NewS3(ctx, blobstore.S3Config{Bucket: "x"})
	require.Error(t, err, "endpoint is required")

	s, err := blobstore.NewS3(ctx, cfg)
	require.NoError(t, err, "creates the missing bucket")
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())

	again, err := blobstore.NewS3(ctx, cfg)
	require.NoError(t, err, "an existing bucket is fine")
	require.NoError(t, again.Close())

	// Presigned URLs name the public endpoint, and MinIO accepts them there.
	pub := cfg
	pub.Bucket = "public"
	pub.PublicEndpoint = strings.Replace(cfg.Endpoint, "127.0.0.1", "localhost", 1)
	ps, err := blobstore.NewS3(ctx, pub)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ps.Close() })
	p, err := ps.PresignPut(ctx, "public-object", "text/plain", 10, time.Minute)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(p.URL, "http://"+pub.PublicEndpoint+"/"), p.URL)
	resp := blobstoretest.Do(t, p.Method, p.URL, p.Headers, []byte("hi"))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", resp.Body)
	info, err := ps.Stat(ctx, "public-object")
	require.NoError(t, err)
	require.Equal(t, int64(2), info.Size)
	blobstoretest.Client().CloseIdleConnections()

	bad := cfg
	bad.SecretKey = "wrong-secret-key"
	_, err = blobstore.NewS3(ctx, bad)
	require.Error(t, err, "wrong credentials are refused at startup")

	gone := cfg
	gone.Bucket = "gone"
	gs, err := blobstore.NewS3(ctx, gone)
	require.NoError(t, err)
	t.Cleanup(func() { _ = gs.Close() })
	admin, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	require.NoError(t, err)
	require.NoError(t, admin.RemoveBucket(ctx, "gone"))
	require.Error(t, gs.Ping(ctx), "Ping reports a missing bucket")
}
