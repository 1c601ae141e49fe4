// Command bench measures Turbo Lane against baselines run in the same
// invocation, and prints the ratios that docs/benchmarks.md records:
//
//   - polling: GET /api/v1/jobs/{id} against a bare net/http handler that
//     returns a job-shaped JSON, driven by the same load generator;
//   - engine overhead: tiny-image jobs/s end to end against raw JetStream
//     synchronous publishes (8 publishers, same server, same fsync setting)
//     divided by the events one job writes;
//   - images: JPEG→WebP q80 through the API against the vips CLI running
//     the same conversions two at a time;
//   - memory: peak RSS of `turbolane serve` while converting a 50 MP image.
//
// Each phase alternates baseline and Turbo Lane in -rounds rounds (default
// 3), so that a burst of load from another process on a shared machine hits
// both sides alike instead of skewing one ratio.
//
// It starts bin/turbolane (build it first: make build) as a child process on
// loopback ports and a temporary data dir, and never fails on timings.
package main
