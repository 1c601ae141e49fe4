package blobstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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

	bad := cfg
	bad.SecretKey = "wrong-secret-key"
	_, err = blobstore.NewS3(ctx, bad)
	require.Error(t, err, "wrong credentials are refused at startup")
}
