package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/convilyn/turbolane/blobstore/miniotest"
)

// TestCLIConvertMinIO converts with an API key against serve on a real
// MinIO: the result download is a 302 to a presigned MinIO URL on the same
// host, which must be followed without the bearer token (S3 refuses a
// request that carries two kinds of authentication).
func TestCLIConvertMinIO(t *testing.T) {
	s3 := miniotest.Start(t)
	m := startServe(t, func(c *Config) {
		c.S3Endpoint, c.S3Bucket, c.S3AccessKey, c.S3SecretKey = s3.Endpoint, "turbolane", s3.AccessKey, s3.SecretKey
	})
	res := newClient(t, m.URL, testAdminToken).postJSON("/api/v1/admin/api-keys", map[string]any{"userId": "minio-cli", "plan": "pro"})
	mustStatus(t, res, http.StatusCreated, "")
	var key struct{ APIKey string }
	res.json(t, &key)
	dir := t.TempDir()
	in := writeFile(t, dir, "s3.jpg", testJPEG(t, 48, 32))
	runCLI(t, "convert", in, "--to", "webp", "--server", m.URL, "--api-key", key.APIKey).mustSucceed(t)
	if b, err := os.ReadFile(filepath.Join(dir, "s3.webp")); err != nil || !isWebP(b) {
		t.Fatalf("result from MinIO: %v, webp %v", err, isWebP(b))
	}
}
