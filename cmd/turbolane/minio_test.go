package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/blobstore/miniotest"
)

// TestMinIOEndToEnd runs serve against a real MinIO server: uploads through
// MinIO presigned URLs, results written to and downloaded from MinIO, and
// cleanup_files and retention deleting there.
func TestMinIOEndToEnd(t *testing.T) {
	s3 := miniotest.Start(t)
	m := startServe(t, func(c *Config) {
		c.S3Endpoint, c.S3Bucket, c.S3AccessKey, c.S3SecretKey = s3.Endpoint, "turbolane", s3.AccessKey, s3.SecretKey
		c.ResultRetention = 3 * time.Second
		c.SweepInterval = 200 * time.Millisecond
	})
	c := newClient(t, m.URL, "")
	jpg := testJPEG(t, 200, 120)

	res := c.postJSON("/api/v1/upload/presign", map[string]any{"fileName": "p.jpg", "fileSize": len(jpg), "contentType": "image/jpeg"})
	mustStatus(t, res, http.StatusOK, "")
	var pre struct {
		FileID, UploadURL string
		Headers           map[string]string
	}
	res.json(t, &pre)
	if !strings.Contains(pre.UploadURL, s3.Endpoint) {
		t.Fatalf("upload URL does not point at MinIO %s: %s", s3.Endpoint, pre.UploadURL)
	}
	var hdr []string
	for k, v := range pre.Headers {
		hdr = append(hdr, k, v)
	}
	if put := c.do(http.MethodPut, pre.UploadURL, bytes.NewReader(jpg), "", hdr...); put.Status != http.StatusOK {
		t.Fatalf("PUT to MinIO: %d %s", put.Status, put.Body)
	}
	mustStatus(t, c.postJSON("/api/v1/upload/confirm", map[string]any{"fileId": pre.FileID}), http.StatusOK, "")

	job := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": pre.FileID, "output_format": "webp"}).JobID)
	if job.Status != "completed" {
		t.Fatalf("job on MinIO: %+v", job)
	}
	result := job.ResultFiles[0]
	redirect := c.get(result.DownloadURL)
	if redirect.Status != http.StatusFound || !strings.Contains(redirect.Header.Get("Location"), s3.Endpoint) {
		t.Fatalf("download should redirect to MinIO: %d %v", redirect.Status, redirect.Header)
	}
	dl := c.download(result.DownloadURL)
	if dl.Status != http.StatusOK || string(dl.Body[8:12]) != "WEBP" {
		t.Fatalf("download from MinIO: %d %.12q", dl.Status, dl.Body)
	}
	ctx := context.Background()
	if _, err := m.Blobs.Stat(ctx, result.FileID); err != nil {
		t.Fatalf("result not in MinIO: %v", err)
	}

	// Retention: results (and the inputs of finished jobs) expire after
	// --result-retention and the sweeper deletes them from MinIO.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := m.Blobs.Stat(ctx, result.FileID)
		if errors.Is(err, blobstore.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("result still in MinIO 30 s after its retention: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustStatus(t, c.get("/api/v1/files/"+result.FileID), http.StatusNotFound, "file_not_found")
	mustStatus(t, c.get("/api/v1/files/"+pre.FileID), http.StatusNotFound, "file_not_found")

	// cleanup_files deletes the input and the results from MinIO at once.
	f := c.upload("q.jpg", jpg)
	j := c.waitJob(c.createJob("image_compression", map[string]any{"file_id": f}).JobID)
	mustStatus(t, c.do(http.MethodDelete, "/api/v1/jobs/"+j.JobID+"?cleanup_files=true", nil, ""), http.StatusNoContent, "")
	for _, key := range []string{f, j.ResultFiles[0].FileID} {
		if _, err := m.Blobs.Stat(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("%s still in MinIO after delete with cleanup: %v", key, err)
		}
	}
}
