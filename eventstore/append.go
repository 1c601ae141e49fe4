package eventstore

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type appendResult struct {
	seqs []uint64
	// dup is true when at least one event was already stored (same
	// Nats-Msg-Id), so the caller's view of the job is behind.
	dup bool
}

// Append appends evs to the job's history if the last sequence on the job's
// subjects (turbolane.jobs.<id>.*) is still expected (0 for a new job), and
// returns the stream sequence of the last event. A conflict returns an error
// matching domain.ErrConcurrency. Re-appending an event that is already
// stored (same ID) succeeds and returns the stored event's sequence; that is
// how a retry after a lost ack is answered. Several events are appended one
// by one, each conditional on the previous one, so a conflict can leave a
// prefix appended; Decide produces one event per command. Safe for
// concurrent use.
func (s *Store) Append(ctx context.Context, jobID string, expected uint64, evs ...domain.Event) (uint64, error) {
	res, err := s.append(ctx, jobID, expected, evs)
	if err != nil {
		return 0, err
	}
	if len(res.seqs) == 0 {
		return expected, nil
	}
	return res.seqs[len(res.seqs)-1], nil
}

func (s *Store) append(ctx context.Context, jobID string, expected uint64, evs []domain.Event) (appendResult, error) {
	filter, err := JobFilter(jobID)
	if err != nil {
		return appendResult{}, err
	}
	res := appendResult{seqs: make([]uint64, 0, len(evs))}
	for _, ev := range evs {
		seq, dup, err := s.appendOne(ctx, filter, jobID, expected, ev)
		if err != nil {
			return appendResult{}, err
		}
		res.seqs = append(res.seqs, seq)
		if dup {
			res.dup = true
			// A duplicate ack leaves the subject where it was; the recovered
			// wrong-last-sequence case found our event at the end.
			if seq > expected {
				expected = seq
			}
			continue
		}
		expected = seq
	}
	return res, nil
}

func (s *Store) appendOne(ctx context.Context, filter, jobID string, expected uint64, ev domain.Event) (uint64, bool, error) {
	if ev.JobID != jobID {
		return 0, false, invalid(ErrInvalidEvent, "event %s belongs to job %q, not %s", ev.ID, ev.JobID, jobID)
	}
	if ev.ID == "" {
		return 0, false, invalid(ErrInvalidEvent, "event of job %s has no id", jobID)
	}
	if ev.Data == nil || ev.Data.EventType() != ev.Type {
		return 0, false, invalid(ErrInvalidEvent, "event %s of type %s carries no matching data", ev.ID, ev.Type)
	}
	subject, err := EventSubject(jobID, ev.Type)
	if err != nil {
		return 0, false, err
	}
	ce, err := cloudEventOf(ev, s.opts.source)
	if err != nil {
		return 0, false, err
	}
	body, err := json.Marshal(ce)
	if err != nil {
		return 0, false, fmt.Errorf("encode %s event %s: %w", ev.Type, ev.ID, err)
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, filter)
	ack, err := s.js.PublishMsg(ctx, m)
	if err == nil {
		_ = s.published(nil)
		return ack.Sequence, ack.Duplicate, nil
	}
	if !isWrongLastSequence(err) {
		return 0, false, fmt.Errorf("append %s event %s to job %s: %w", ev.Type, ev.ID, jobID, s.published(err))
	}
	// A standalone server checks the expected sequence before the
	// duplicate window, so a retry whose first ack was lost comes back as
	// "wrong last sequence". If the newest event of the job is ours, the
	// first attempt went through.
	last, ok, lerr := s.lastMsg(ctx, filter)
	if lerr == nil && ok && last.msgID == ev.ID {
		return last.seq, true, nil
	}
	return 0, false, fmt.Errorf("append %s event %s to job %s at sequence %d: %w", ev.Type, ev.ID, jobID, expected, domain.ErrConcurrency)
}

// isWrongLastSequence reports a failed expected-sequence check: 10071 on a
// single server, 10164 on a replicated stream.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// Execute runs cmd against the job: fold its history, domain.Decide, and
// Append with the folded version as the expected sequence; on a conflict it
// reloads and decides again, a bounded number of times. It returns the state
// after the new events (Version = new sequence), or the domain error from
// Decide (e.g. domain.ErrJobNotFound, domain.ErrAlreadyCompleted).
//
// The folded state of recent jobs is cached, so the usual command costs one
// publish and no read: a cache that is stale because another process wrote
// to the job only costs one conflict and a read of the missing events. Within
// one Store, commands on the same job are serialised so that they do not
// conflict with each other. The returned Job shares maps and slices with the
// cache and must be treated as read-only. Safe for concurrent use.
func (s *Store) Execute(ctx context.Context, jobID string, cmd domain.Command) (domain.Job, error) {
	if err := checkJobID(jobID); err != nil {
		return domain.Job{}, err
	}
	if cmd == nil {
		return domain.Job{}, fmt.Errorf("execute on job %s: nil command", jobID)
	}
	if c, ok := cmd.(domain.Create); ok && c.JobID != jobID {
		return domain.Job{}, invalid(ErrInvalidJobID, "create names job %q but was sent to %s", c.JobID, jobID)
	}
	unlock := s.locks.lock(jobID)
	defer unlock()

	job, cached := s.cache.get(jobID)
	_, isCreate := cmd.(domain.Create)
	// fresh says job reflects a read made during this call. A create on an
	// unknown job skips the read: if the job exists after all, the append
	// conflicts and the re-decision reports domain.ErrJobExists.
	fresh := false
	if !cached && !isCreate {
		var err error
		if job, err = s.advance(ctx, jobID, domain.Job{}); err != nil {
			return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
		}
		fresh = true
	}
	askedLeader := false
	for attempt := 1; ; attempt++ {
		evs, err := domain.Decide(job, cmd, time.Now())
		if err != nil {
			if fresh && !askedLeader {
				// A fresh read is a direct get that any replica may answer,
				// and a trailing one would make a worker drop the work item
				// of a job it cannot see yet (lost: queued forever). Ask the
				// leader for anything newer before refusing.
				askedLeader = true
				newer, lerr := s.advanceLeader(ctx, jobID, job)
				if lerr != nil {
					s.cache.drop(jobID)
					return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, lerr)
				}
				if newer.Version != job.Version {
					job = newer
					s.cache.put(jobID, job)
					continue
				}
			}
			if !fresh {
				// The cached or assumed state may be behind; decide again
				// on what the stream says before refusing.
				if job, err = s.advance(ctx, jobID, job); err != nil {
					s.cache.drop(jobID)
					return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
				}
				fresh = true
				s.cache.put(jobID, job)
				continue
			}
			return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
		}
		for i := range evs {
			if evs[i].ID == "" {
				evs[i].ID = domain.NewID("evt")
			}
		}
		res, err := s.append(ctx, jobID, job.Version, evs)
		if err == nil {
			if res.dup {
				// The command had been applied before (a retry); report
				// the job as the stream has it.
				if job, err = s.advance(ctx, jobID, job); err != nil {
					s.cache.drop(jobID)
					return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
				}
				s.cache.put(jobID, job)
				return job, nil
			}
			for i := range evs {
				evs[i].Sequence = res.seqs[i]
				job = domain.Apply(job, evs[i])
			}
			s.cache.put(jobID, job)
			return job, nil
		}
		if !errors.Is(err, domain.ErrConcurrency) || attempt >= s.opts.maxAttempts {
			s.cache.drop(jobID)
			return domain.Job{}, fmt.Errorf("execute %s on job %s (attempt %d): %w", commandName(cmd), jobID, attempt, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
		}
		if job, err = s.advance(ctx, jobID, job); err != nil {
			s.cache.drop(jobID)
			return domain.Job{}, fmt.Errorf("execute %s on job %s: %w", commandName(cmd), jobID, err)
		}
		fresh = true
		s.cache.put(jobID, job)
	}
}

func commandName(cmd domain.Command) string {
	switch cmd.(type) {
	case domain.Create:
		return "create"
	case domain.Start:
		return "start"
	case domain.ReportProgress:
		return "progress"
	case domain.Complete:
		return "complete"
	case domain.Fail:
		return "fail"
	case domain.Retry:
		return "retry"
	case domain.Delete:
		return "delete"
	}
	return fmt.Sprintf("%T", cmd)
}

// backoff sleeps a few jittered milliseconds, growing with the attempt, so
// that writers racing on one job from several processes spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(2*time.Millisecond) * int64(attempt)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jobCache is a bounded LRU of folded job states. It only moves forward:
// an older version never replaces a newer one.
type jobCache struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	id  string
	job domain.Job
}

func newJobCache(max int) *jobCache {
	return &jobCache{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *jobCache) get(id string) (domain.Job, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return domain.Job{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).job, true
}

func (c *jobCache) put(id string, j domain.Job) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		e := el.Value.(*cacheEntry)
		if j.Version >= e.job.Version {
			e.job = j
		}
		c.order.MoveToFront(el)
		return
	}
	c.items[id] = c.order.PushFront(&cacheEntry{id: id, job: j})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).id)
	}
}

func (c *jobCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.order.Remove(el)
		delete(c.items, id)
	}
}

// keyedMutex serialises work per key; entries live only while in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e, ok := k.m[key]
	if !ok {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
