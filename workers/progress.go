package workers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// progress turns an engine's progress calls into ReportProgress commands,
// coalesced: at most one per interval, only when the percentage changed, and
// at most max per run, so that a chatty engine cannot flood JOB_EVENTS. The
// first one also waits an interval from the start of the run: a job that is
// done within it writes no progress events at all, which saves a durable
// write per tiny job (docs/benchmarks.md), and its client sees it completed
// about as soon as it would have seen the progress. The
// engine's callback only records the latest value and never blocks; a single
// goroutine appends.
type progress struct {
	jobs     JobStore
	jobID    string
	lease    string
	interval time.Duration
	max      int
	lost     func() // called once when the lease is lost or the job deleted

	mu      sync.Mutex
	pct     int
	msg     string
	pending bool

	wake chan struct{}
	done chan struct{}
}

func startProgress(ctx context.Context, jobs JobStore, jobID, lease string, interval time.Duration, max int, lost func()) *progress {
	p := &progress{
		jobs: jobs, jobID: jobID, lease: lease, interval: interval, max: max, lost: lost,
		pct:  -1,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go p.loop(ctx)
	return p
}

// report is the engine's Progress callback.
func (p *progress) report(pct int, msg string) {
	pct = min(max(pct, 0), 100)
	p.mu.Lock()
	p.pct, p.msg, p.pending = pct, msg, true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// stop ends the loop and waits for an append in flight, so that no progress
// event can follow the run's completion.
func (p *progress) stop(cancel context.CancelFunc) {
	cancel()
	<-p.done
}

func (p *progress) loop(ctx context.Context) {
	defer close(p.done)
	sent, last := 0, -1
	lastAt := time.Now()
	for sent < p.max {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		if wait := p.interval - time.Since(lastAt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		p.mu.Lock()
		pct, msg, pending := p.pct, p.msg, p.pending
		p.pending = false
		p.mu.Unlock()
		if !pending || pct == last {
			continue
		}
		lastAt = time.Now()
		_, err := p.jobs.Execute(ctx, p.jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Lease: p.lease, Progress: pct, Message: msg})
		switch {
		case err == nil:
			sent++
			last = pct
		case errors.Is(err, domain.ErrLeaseLost), errors.Is(err, domain.ErrJobNotFound):
			// Another run holds the job now, or it was deleted: this run's
			// work can no longer complete it.
			p.lost()
			return
		}
		// Any other error (a full stream, a hiccup) only costs one update.
	}
}
