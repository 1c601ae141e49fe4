// Package eventstore is the only package that knows NATS JetStream: it starts
// the embedded nats-server, creates the streams and key-value buckets, encodes
// domain events as CloudEvents 1.0 on the JOB_EVENTS stream, appends them with
// optimistic concurrency (expected last subject sequence), loads and folds a
// job's history, runs the decide-and-append loop behind every command, follows
// the stream for projections, and carries the work queue and the file and API
// key records. It must not decide anything about jobs itself (that is
// domain.Decide), must not let a caller-supplied id become a subject wildcard,
// and must not leak JetStream types, subjects or headers to other packages.
package eventstore
