package eventstore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The benchmarks run against the same embedded server with the production
// durability setting (fsync before every ack). Compare:
//
//	go test ./eventstore -run '^$' -bench . -benchtime 2s
//
// BenchmarkExecute runs whole jobs (create, start, two progress reports,
// complete: five commands) and reports jobs/s and cmds/s; BenchmarkRawPublish
// is the baseline, one synchronous 512 B js.Publish per op (msgs/s). With the
// state cache an Execute costs one publish, so cmds/s should come close to
// msgs/s.

const commandsPerJob = 5

func runJob(ctx context.Context, s *Store) error {
	jobID := domain.NewJobID()
	lease := domain.NewID("lease")
	cmds := []domain.Command{
		create(jobID),
		domain.Start{ID: domain.NewID("cmd"), WorkerID: "bench", Lease: lease},
		domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 30},
		domain.ReportProgress{ID: domain.NewID("cmd"), Lease: lease, Progress: 70},
		domain.Complete{ID: domain.NewID("cmd"), Lease: lease, ResultFiles: []domain.ResultFile{{FileID: "file_r", FileName: "r.webp", MimeType: "image/webp", SizeBytes: 1234}}},
	}
	for _, c := range cmds {
		if _, err := s.Execute(ctx, jobID, c); err != nil {
			return fmt.Errorf("%T: %w", c, err)
		}
	}
	return nil
}

func BenchmarkExecute(b *testing.B) {
	s := newTestStore(b)
	ctx := testCtx(b)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := runJob(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		reportRates(b, commandsPerJob)
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetParallelism(8 / max(1, runtimeProcs()))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := runJob(ctx, s); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRates(b, commandsPerJob)
	})
}

func BenchmarkRawPublish(b *testing.B) {
	s := newTestStore(b)
	ctx := testCtx(b)
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	require.NoError(b, err)
	payload := make([]byte, 512)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.js.Publish(ctx, "bench.raw", payload); err != nil {
				b.Fatal(err)
			}
		}
		reportRates(b, 1)
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetParallelism(8 / max(1, runtimeProcs()))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.js.Publish(ctx, "bench.raw", payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRates(b, 1)
	})
}

func reportRates(b *testing.B, perOp int) {
	secs := b.Elapsed().Seconds()
	if secs == 0 {
		return
	}
	if perOp == 1 {
		b.ReportMetric(float64(b.N)/secs, "msgs/s")
		return
	}
	b.ReportMetric(float64(b.N)/secs, "jobs/s")
	b.ReportMetric(float64(b.N*perOp)/secs, "cmds/s")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkExecuteVsRawPublish interleaves one job (five Executes) with five
// raw 512 B publishes in every op, so that load from other processes on the
// machine hits both alike, and reports the throughput ratio exec/raw
// (1.0 = an Execute costs exactly one synchronous publish).
func BenchmarkExecuteVsRawPublish(b *testing.B) {
	s := newTestStore(b)
	ctx := testCtx(b)
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	require.NoError(b, err)
	payload := make([]byte, 512)
	var rawTime, execTime time.Duration
	for b.Loop() {
		start := time.Now()
		for range commandsPerJob {
			if _, err := s.js.Publish(ctx, "bench.raw", payload); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		if err := runJob(ctx, s); err != nil {
			b.Fatal(err)
		}
		rawTime += mid.Sub(start)
		execTime += time.Since(mid)
	}
	n := float64(b.N * commandsPerJob)
	b.ReportMetric(n/rawTime.Seconds(), "raw-msgs/s")
	b.ReportMetric(n/execTime.Seconds(), "exec-cmds/s")
	b.ReportMetric(rawTime.Seconds()/execTime.Seconds(), "exec/raw")
}
