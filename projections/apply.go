package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/convilyn/turbolane/domain"
)

// The statements of Apply, prepared at Open: the writer pool has one
// connection, which Apply holds in its transaction.
const (
	setCheckpointSQL = "UPDATE checkpoint SET seq = ? WHERE id = 1"
	deleteJobSQL     = "DELETE FROM jobs WHERE job_id = ?"
	upsertJobSQL     = `INSERT INTO jobs (job_id, user_id, status, processor_type, created_at, updated_at, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (job_id) DO UPDATE SET user_id = excluded.user_id, status = excluded.status,
				processor_type = excluded.processor_type, created_at = excluded.created_at,
				updated_at = excluded.updated_at, doc = excluded.doc`
	addCountSQL = `INSERT INTO job_counts (user_id, status, processor_type, n) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, status, processor_type) DO UPDATE SET n = n + excluded.n`
	dropCountSQL   = "DELETE FROM job_counts WHERE user_id = ? AND status = ? AND processor_type = ? AND n <= 0"
	putDurationSQL = `INSERT INTO processor_durations (processor_type, count, total_seconds) VALUES (?, ?, ?)
			ON CONFLICT (processor_type) DO UPDATE SET count = excluded.count, total_seconds = excluded.total_seconds`
)

var applySQL = []string{getSQL, durationSQL, setCheckpointSQL, deleteJobSQL, upsertJobSQL, addCountSQL, dropCountSQL, putDurationSQL}

// statusRank orders statuses along the lifecycle for sort_by=status, rather
// than alphabetically (which would put completed before queued).
var statusRank = map[domain.Status]int{
	domain.StatusQueued:     0,
	domain.StatusProcessing: 1,
	domain.StatusCompleted:  2,
	domain.StatusFailed:     3,
}

func rankOf(s domain.Status) int {
	if r, ok := statusRank[s]; ok {
		return r
	}
	return len(statusRank) // unknown statuses sort last
}

// countKey is one per-user counter.
type countKey struct {
	user   string
	status int
	ptype  domain.ProcessorType
}

func keyOf(j domain.Job) countKey {
	return countKey{user: j.UserID, status: rankOf(j.Status), ptype: j.ProcessorType}
}

// pending is a job touched by the batch being applied.
type pending struct {
	orig   *countKey // counter key of the row before the batch; nil when there was none
	job    domain.Job
	exists bool // whether a row should exist after the batch
	dirty  bool
}

type duration struct {
	count int64
	total float64
	dirty bool
}

// batch holds the state of one Apply transaction.
type batch struct {
	q         *txStmts
	jobs      map[string]*pending
	durations map[domain.ProcessorType]*duration
}

// Apply folds events into the view in one transaction. Events with a
// Sequence at or below the checkpoint are skipped, so redeliveries and the
// overlap after a restart are harmless; an event without a Sequence fails
// with ErrUnsequenced and nothing of the call is applied. Events of a job the
// view does not hold (never created, or deleted) are skipped, but still
// advance the checkpoint. A deleted event removes the job from the view.
func (v *JobView) Apply(ctx context.Context, evs ...domain.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if v.isClosed() {
		return ErrClosed
	}
	v.applyMu.Lock()
	defer v.applyMu.Unlock()

	start := v.Checkpoint()
	cp := start
	fresh := false
	for _, ev := range evs {
		if ev.Sequence == 0 {
			return fmt.Errorf("apply %s event %s of job %s: %w", ev.Type, ev.ID, ev.JobID, ErrUnsequenced)
		}
		fresh = fresh || ev.Sequence > start
	}
	if !fresh {
		return nil // all redeliveries: not even a transaction
	}
	tx, err := v.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin view transaction: %w", err)
	}
	defer tx.Rollback()
	b := &batch{q: newTxStmts(tx, v.writeStmts), jobs: map[string]*pending{}, durations: map[domain.ProcessorType]*duration{}}
	for _, ev := range evs {
		if ev.Sequence <= cp {
			continue
		}
		if err := b.apply(ctx, ev); err != nil {
			return fmt.Errorf("apply %s event %d of job %s: %w", ev.Type, ev.Sequence, ev.JobID, err)
		}
		cp = ev.Sequence
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.q.exec(ctx, setCheckpointSQL, int64(cp)); err != nil {
		return fmt.Errorf("store view checkpoint %d: %w", cp, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit view batch up to sequence %d: %w", cp, err)
	}
	// Forget the cached reads before anyone can wait for this checkpoint:
	// a client that reads its own write must not get the old job.
	v.cache.committed(b.touched(), b.durationsChanged())
	v.setCheckpoint(cp)
	return nil
}

func (b *batch) apply(ctx context.Context, ev domain.Event) error {
	p, err := b.load(ctx, ev.JobID)
	if err != nil {
		return err
	}
	_, creates := ev.Data.(domain.Created)
	if !p.exists && !creates {
		return nil // garbage or a late event of a deleted job: nothing to fold into
	}
	p.dirty = true
	if _, ok := ev.Data.(domain.Deleted); ok {
		// Forget the state entirely, so that whatever follows in this batch
		// sees what a later batch would see: no row.
		p.job, p.exists = domain.Job{}, false
		return nil
	}
	p.job = domain.Apply(p.job, ev)
	p.exists = true
	if d, ok := ev.Data.(domain.Completed); ok {
		if err := b.addDuration(ctx, p.job.ProcessorType, d.ProcessingTimeSeconds); err != nil {
			return err
		}
	}
	return nil
}

// load returns the batch's state of a job, reading the row on first use.
func (b *batch) load(ctx context.Context, jobID string) (*pending, error) {
	if p, ok := b.jobs[jobID]; ok {
		return p, nil
	}
	p := &pending{}
	var doc []byte
	err := b.q.scan(ctx, getSQL, []any{jobID}, &doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("load job %s: %w", jobID, err)
	default:
		j, err := decodeJob(doc)
		if err != nil {
			return nil, fmt.Errorf("load job %s: %w", jobID, err)
		}
		k := keyOf(j)
		p.orig, p.job, p.exists = &k, j, true
	}
	b.jobs[jobID] = p
	return p, nil
}

// addDuration adds one completed attempt. The running total is kept in
// event order, one addition per event, so that the float sum is the same
// however the events were batched (a rebuilt view must equal a live one).
func (b *batch) addDuration(ctx context.Context, t domain.ProcessorType, secs float64) error {
	d, ok := b.durations[t]
	if !ok {
		d = &duration{}
		err := b.q.scan(ctx, durationSQL, []any{string(t)}, &d.count, &d.total)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load durations of %s: %w", t, err)
		}
		b.durations[t] = d
	}
	d.count++
	d.total += secs
	d.dirty = true
	return nil
}

// touched lists the jobs whose rows the batch wrote or deleted.
func (b *batch) touched() []string {
	ids := make([]string, 0, len(b.jobs))
	for id, p := range b.jobs {
		if p.dirty {
			ids = append(ids, id)
		}
	}
	return ids
}

// durationsChanged reports whether the batch changed an estimate.
func (b *batch) durationsChanged() bool {
	for _, d := range b.durations {
		if d.dirty {
			return true
		}
	}
	return false
}

// flush writes every touched row, counter and duration.
func (b *batch) flush(ctx context.Context) error {
	ids := make([]string, 0, len(b.jobs))
	for id, p := range b.jobs {
		if p.dirty {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // deterministic write order keeps runs comparable
	deltas := map[countKey]int64{}
	for _, id := range ids {
		p := b.jobs[id]
		if p.orig != nil {
			deltas[*p.orig]--
		}
		if !p.exists {
			if p.orig != nil {
				if err := b.q.exec(ctx, deleteJobSQL, id); err != nil {
					return fmt.Errorf("delete job %s from view: %w", id, err)
				}
			}
			continue
		}
		deltas[keyOf(p.job)]++
		doc, err := encodeJob(p.job)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", id, err)
		}
		err = b.q.exec(ctx, upsertJobSQL,
			id, p.job.UserID, rankOf(p.job.Status), string(p.job.ProcessorType),
			p.job.CreatedAt.UnixNano(), p.job.UpdatedAt.UnixNano(), doc)
		if err != nil {
			return fmt.Errorf("store job %s in view: %w", id, err)
		}
	}
	for k, n := range deltas {
		if n == 0 {
			continue
		}
		err := b.q.exec(ctx, addCountSQL,
			k.user, k.status, string(k.ptype), n)
		if err != nil {
			return fmt.Errorf("count jobs of user %s: %w", k.user, err)
		}
		if n < 0 {
			err := b.q.exec(ctx, dropCountSQL,
				k.user, k.status, string(k.ptype))
			if err != nil {
				return fmt.Errorf("drop empty counter of user %s: %w", k.user, err)
			}
		}
	}
	for t, d := range b.durations {
		if !d.dirty {
			continue
		}
		err := b.q.exec(ctx, putDurationSQL,
			string(t), d.count, d.total)
		if err != nil {
			return fmt.Errorf("store durations of %s: %w", t, err)
		}
	}
	return nil
}

// Reset empties the view and sets the checkpoint to 0, for a rebuild from
// sequence 1 (turbolane replay). Do not run it while Run is applying.
func (v *JobView) Reset(ctx context.Context) error {
	if v.isClosed() {
		return ErrClosed
	}
	v.applyMu.Lock()
	defer v.applyMu.Unlock()
	tx, err := v.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin view reset: %w", err)
	}
	defer tx.Rollback()
	for _, t := range []string{"jobs", "job_counts", "processor_durations"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("reset view: empty %s: %w", t, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE checkpoint SET seq = 0 WHERE id = 1"); err != nil {
		return fmt.Errorf("reset view checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit view reset: %w", err)
	}
	v.cache.reset()
	v.setCheckpoint(0)
	return nil
}

func encodeJob(j domain.Job) ([]byte, error) {
	return json.Marshal(j)
}

// decodeJob reads a stored job. Params come back from JSON as float64 and
// []any; normaliseParams turns them into what domain.ValidateParams
// produces, so a job reads the same whether it was folded live or rebuilt.
func decodeJob(doc []byte) (domain.Job, error) {
	var j domain.Job
	if err := json.Unmarshal(doc, &j); err != nil {
		return domain.Job{}, fmt.Errorf("decode stored job: %w", err)
	}
	j.Params = normaliseParams(j.ProcessorType, j.Params)
	return j, nil
}
