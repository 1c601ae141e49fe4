package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// Figures on the project machine (2 shared vCPU, go test -bench . -benchtime
// 2000x ./projections/), for 200k jobs of one user:
//
//	List newest 20 ............ ~0.4 ms   (20 documents decoded)
//	List oldest 100 ........... ~2.4 ms
//	List completed by updated . ~0.5 ms
//	List page 100 ............. ~0.6 ms
//	List page 5000 (offset 100k, the middle: the worst case) ~11 ms
//	Get ....................... ~0.04 ms  (random ids: read cache misses)
//	Get, polled ............... ~0.002 ms (the same 16 jobs: cache hits)
//	Apply, 1 event per tx ..... ~0.25 ms/event
//	Apply, 256 events per tx .. ~0.01 ms/event (~100k events/s)
//
// Building the 200k-job view takes about 16 s and happens once per run.

// benchJobs is the size of the one user's job list behind BenchmarkList.
const benchJobs = 200_000

var bench struct {
	once sync.Once
	dir  string
	v    *JobView
	ids  []string
	err  error
}

// benchView builds, once per test binary, a view holding benchJobs jobs of
// one user (a quarter of them completed, types mixed) plus a few jobs of
// other users, and reuses it across benchmarks.
func benchView(b *testing.B) (*JobView, []string) {
	b.Helper()
	bench.once.Do(func() {
		start := time.Now()
		bench.dir, bench.err = os.MkdirTemp("", "projections-bench-")
		if bench.err != nil {
			return
		}
		bench.v, bench.err = Open(filepath.Join(bench.dir, "view.db"))
		if bench.err != nil {
			return
		}
		h := newHistory()
		types := []domain.ProcessorType{domain.ImageConversion, domain.OCRProcessing, domain.DocumentConversion}
		params := map[domain.ProcessorType]map[string]any{
			domain.ImageConversion:    imageParams("f"),
			domain.OCRProcessing:      {"file_id": "f"},
			domain.DocumentConversion: {"file_id": "f", "output_format": "pdf"},
		}
		ctx := context.Background()
		flush := func() {
			if bench.err == nil && len(h.events) > 0 {
				bench.err = bench.v.Apply(ctx, h.events...)
			}
			h.events = h.events[:0]
			clear(h.jobs) // keep the fold small; jobs are done with
		}
		for i := range benchJobs {
			user := "bench_user"
			if i%1000 == 999 {
				user = fmt.Sprintf("other_%d", i)
			}
			pt := types[i%len(types)]
			id, _ := h.create(b, user, pt, params[pt])
			if user == "bench_user" {
				bench.ids = append(bench.ids, id)
			}
			if i%4 == 0 {
				h.start(b, id)
				h.complete(b, id)
			}
			if len(h.events) >= 5000 {
				flush()
			}
		}
		flush()
		b.Logf("built a view of %d jobs in %s", benchJobs, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.v, bench.ids
}

func closeBenchViews() {
	if bench.v != nil {
		bench.v.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
}

func BenchmarkList(b *testing.B) {
	v, _ := benchView(b)
	ctx := context.Background()
	cases := []struct {
		name string
		q    domain.ListQuery
	}{
		{"newest", domain.ListQuery{SortBy: "createdAt", Descending: true, Page: 1, Limit: 20}},
		{"oldest-100", domain.ListQuery{SortBy: "createdAt", Page: 1, Limit: 100}},
		{"updated", domain.ListQuery{SortBy: "updatedAt", Descending: true, Page: 1, Limit: 20}},
		{"by-status", domain.ListQuery{SortBy: "status", Page: 1, Limit: 20}},
		{"completed-updated", domain.ListQuery{Status: domain.StatusCompleted, SortBy: "updatedAt", Descending: true, Page: 1, Limit: 20}},
		{"ocr-by-status", domain.ListQuery{ProcessorType: domain.OCRProcessing, SortBy: "status", Descending: true, Page: 1, Limit: 20}},
		{"page-100", domain.ListQuery{SortBy: "createdAt", Descending: true, Page: 100, Limit: 20}},
		{"page-5000", domain.ListQuery{SortBy: "createdAt", Descending: true, Page: 5000, Limit: 20}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			q := c.q
			q.UserID = "bench_user"
			for b.Loop() {
				jobs, total, err := v.List(ctx, q)
				if err != nil || len(jobs) == 0 || total == 0 {
					b.Fatalf("list: %d jobs of %d, %v", len(jobs), total, err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	v, ids := benchView(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		if _, err := v.Get(ctx, ids[rng.IntN(len(ids))]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetPolled reads the same few jobs over and over, the way polling
// clients do: after the first read each is served from the read cache until
// a commit touches it.
func BenchmarkGetPolled(b *testing.B) {
	v, ids := benchView(b)
	ctx := context.Background()
	hot := ids[len(ids)-16:]
	i := 0
	for b.Loop() {
		if _, err := v.Get(ctx, hot[i%len(hot)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkApply measures one event (create, start, progress, complete in
// turn) per op, either in its own transaction or in Run-sized batches.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch-%d", size), func(b *testing.B) {
			v, _ := openView(b)
			ctx := context.Background()
			h := newHistory()
			var todo []domain.Event
			next := func() domain.Event {
				if len(todo) == 0 {
					id, evs := h.create(b, "u", domain.ImageConversion, imageParams("f"))
					todo = append(todo, evs...)
					todo = append(todo, h.start(b, id)...)
					todo = append(todo, h.progress(b, id, 50)...)
					todo = append(todo, h.complete(b, id)...)
					delete(h.jobs, id)
				}
				ev := todo[0]
				todo = todo[1:]
				return ev
			}
			batch := make([]domain.Event, 0, size)
			for b.Loop() {
				batch = append(batch, next())
				if len(batch) == size {
					if err := v.Apply(ctx, batch...); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			if err := v.Apply(ctx, batch...); err != nil {
				b.Fatal(err)
			}
		})
	}
}
