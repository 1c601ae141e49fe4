// Package metrics derives Prometheus metrics from the job event stream —
// jobs created, completed and failed by processor type, processing and queue
// time histograms — and samples the queue depth of every worker pool and the
// lag of the read view behind the stream. It reads events and JetStream
// state through small interfaces (eventstore.Store satisfies them) and must
// not write anything: metrics are a by-product of the log, never a source of
// truth.
package metrics
