// Command checker is a Jepsen-style durability checker for Turbo Lane. It
// starts (or is pointed at) a scaled-out deployment — a 3-node NATS
// JetStream cluster, MinIO, two API replicas, a standard and a large
// worker, all as separate processes on loopback — and runs several clients
// that create small image jobs for a while. Meanwhile it SIGKILLs and
// restarts worker processes, API processes and one NATS node at a time, and
// pauses a worker with SIGSTOP/SIGCONT for longer than the ack wait.
//
// Afterwards it checks every job that got a 202: it is found on every
// replica, reaches a terminal state, the replicas agree on it, its history
// has exactly one terminal event per attempt and at most one completion, the
// view equals a fold of its events, its result files download, and finally
// `turbolane replay --verify` finds each API's projections equal to a fresh
// replay of the log. It prints the figures and exits 1 if any check failed.
//
//	go run ./cmd/checker -duration 10m
//
// The short form runs as TestChecker in `go test ./cmd/checker` (and so in
// `make test`); `make check` runs the long form.
package main
