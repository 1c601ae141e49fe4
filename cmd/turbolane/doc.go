// Command turbolane is the Turbo Lane binary: `serve` runs everything in one
// process on the embedded default (in-process NATS JetStream and a disk blob
// store), `api` and `worker --pool` run the roles separately against an
// external NATS cluster and MinIO/S3, `replay` rebuilds the read views from
// the event log, and `version` prints the build.
//
// This is the only package that reads flags and environment variables,
// builds concrete adapters or exits; everything it wires is reachable through
// the Main type so that end-to-end tests start the real thing.
package main
