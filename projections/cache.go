package projections

import (
	"sync"

	"github.com/convilyn/turbolane/domain"
)

// defaultCacheJobs bounds the decoded jobs kept for Get. Polling clients
// ask for the same recent jobs over and over; 4096 documents of about 1 KiB
// decoded are a few MiB.
const defaultCacheJobs = 4096

// readCache keeps decoded jobs and duration estimates between commits, so
// that the polling endpoint does not run a SQLite query and a JSON decode on
// every request for a job that has not changed (docs/benchmarks.md: the
// query and the decode were a third of the CPU of GET /jobs/{id}).
//
// It is never the source of truth: Apply drops the entries of every job it
// touched after committing, and Reset drops everything. A reader that
// queried SQLite while a commit was under way could have read the old row,
// so a miss only stores what it read when no commit finished in between
// (gen unchanged).
type readCache struct {
	mu        sync.Mutex
	max       int
	gen       uint64
	jobs      map[string]domain.Job
	estimates map[domain.ProcessorType]*float64 // nil value: no completed attempt yet
}

func newReadCache(max int) *readCache {
	return &readCache{max: max, jobs: map[string]domain.Job{}, estimates: map[domain.ProcessorType]*float64{}}
}

// generation returns the commit generation a miss must quote to store.
func (c *readCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *readCache) job(id string) (domain.Job, bool) {
	if c.max == 0 {
		return domain.Job{}, false
	}
	c.mu.Lock()
	j, ok := c.jobs[id]
	c.mu.Unlock()
	if !ok {
		return domain.Job{}, false
	}
	return cloneJob(j), true
}

// storeJob keeps a copy of j if no commit happened since gen.
func (c *readCache) storeJob(gen uint64, j domain.Job) {
	if c.max == 0 {
		return
	}
	j = cloneJob(j)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.jobs[j.ID]; !ok && len(c.jobs) >= c.max {
		for k := range c.jobs { // evict an arbitrary entry: map order is random
			delete(c.jobs, k)
			break
		}
	}
	c.jobs[j.ID] = j
}

func (c *readCache) estimate(t domain.ProcessorType) (*float64, bool) {
	if c.max == 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.estimates[t]
	c.mu.Unlock()
	if !ok || e == nil {
		return nil, ok
	}
	v := *e
	return &v, true
}

func (c *readCache) storeEstimate(gen uint64, t domain.ProcessorType, e *float64) {
	if c.max == 0 {
		return
	}
	if e != nil {
		v := *e
		e = &v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.estimates[t] = e
}

// committed forgets what a commit changed: the given jobs, and the
// estimates when durations changed.
func (c *readCache) committed(jobIDs []string, durations bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range jobIDs {
		delete(c.jobs, id)
	}
	if durations {
		clear(c.estimates)
	}
}

// reset forgets everything.
func (c *readCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.jobs)
	clear(c.estimates)
}

// cloneJob copies everything a caller could modify in place, so that no
// caller can change the cached job or another caller's copy.
func cloneJob(j domain.Job) domain.Job {
	j.Params = cloneMap(j.Params)
	if j.InputFiles != nil {
		j.InputFiles = append([]domain.InputFile(nil), j.InputFiles...)
	}
	if j.ResultFiles != nil {
		j.ResultFiles = append([]domain.ResultFile(nil), j.ResultFiles...)
	}
	if j.Error != nil {
		e := *j.Error
		j.Error = &e
	}
	if j.StartedAt != nil {
		t := *j.StartedAt
		j.StartedAt = &t
	}
	if j.CompletedAt != nil {
		t := *j.CompletedAt
		j.CompletedAt = &t
	}
	return j
}

// cloneMap deep-copies decoded JSON (maps, slices and scalars), plus the
// []string that normaliseParams makes of file id lists.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case []string:
		return append([]string(nil), x...)
	}
	return v
}
