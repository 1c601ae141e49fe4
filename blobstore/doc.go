// Package blobstore keeps the bytes of uploaded and produced files behind one
// small Store interface with two implementations: Disk, the embedded default
// that stores objects in a local directory and serves its own HMAC-signed,
// expiring upload and download URLs through Handler, and S3, which talks to
// MinIO or any S3-compatible service through minio-go. It is the only package
// that knows minio-go. It stores opaque objects under validated keys (file
// ids) and must not know about users, plans, jobs or file records: ownership,
// plan limits and retention are decided by its callers.
package blobstore
