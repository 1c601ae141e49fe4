package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// Default and maximum page size of List, as in the contract.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

const (
	getSQL      = "SELECT doc FROM jobs WHERE job_id = ?"
	durationSQL = "SELECT count, total_seconds FROM processor_durations WHERE processor_type = ?"
)

// Get returns a job as the view holds it. It returns an error matching
// domain.ErrJobNotFound when the job was never created or was deleted.
// Ownership is the caller's business (domain.Job.OwnedBy).
func (v *JobView) Get(ctx context.Context, jobID string) (domain.Job, error) {
	if v.isClosed() {
		return domain.Job{}, ErrClosed
	}
	if j, ok := v.cache.job(jobID); ok {
		return j, nil
	}
	gen := v.cache.generation()
	s, err := v.readStmts.get(ctx, getSQL)
	if err != nil {
		return domain.Job{}, fmt.Errorf("get job %s: %w", jobID, err)
	}
	var doc []byte
	err = s.QueryRowContext(ctx, jobID).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Job{}, fmt.Errorf("get job %s: %w", jobID, domain.ErrJobNotFound)
	}
	if err != nil {
		return domain.Job{}, fmt.Errorf("get job %s: %w", jobID, err)
	}
	j, err := decodeJob(doc)
	if err != nil {
		return domain.Job{}, fmt.Errorf("get job %s: %w", jobID, err)
	}
	v.cache.storeJob(gen, j)
	return j, nil
}

// Stats returns the stats of a job (domain.StatsOf), or an error matching
// domain.ErrJobNotFound.
func (v *JobView) Stats(ctx context.Context, jobID string) (domain.JobStats, error) {
	j, err := v.Get(ctx, jobID)
	if err != nil {
		return domain.JobStats{}, err
	}
	return domain.StatsOf(j), nil
}

// List returns one page of a user's jobs and the number of jobs matching the
// filters. Zero Page and Limit mean 1 and DefaultLimit; a negative page, a
// limit above MaxLimit, an unknown status or sort key is a domain validation
// error. The order is stable: ties on the sort key break on created time
// (for status) and then on the job id, in the same direction. Sorting by
// status follows the lifecycle: queued, processing, completed, failed. A page
// past the end is empty, with the true total.
//
// Cost: every filter and sort has an index that yields rows in order, and
// the total comes from per-user counters, so a page costs O(log n + page)
// plus walking the skipped index entries; a page in the second half of the
// list is read from the other end, so at most half the list is skipped.
func (v *JobView) List(ctx context.Context, q domain.ListQuery) ([]domain.Job, int, error) {
	if v.isClosed() {
		return nil, 0, ErrClosed
	}
	lq, err := planList(q)
	if err != nil {
		return nil, 0, err
	}
	// Prepare outside the transaction: a ":memory:" view has one connection.
	if err := v.readStmts.prepare(ctx, lq.countSQL(), lq.selectSQL(false), lq.selectSQL(true), getSQL); err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: %w", q.UserID, err)
	}
	// One read transaction, so that the page and the total come from the
	// same snapshot.
	tx, err := v.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: begin: %w", q.UserID, err)
	}
	defer tx.Rollback()
	st := newTxStmts(tx, v.readStmts)

	var total int64
	if err := st.scan(ctx, lq.countSQL(), lq.args, &total); err != nil {
		return nil, 0, fmt.Errorf("count jobs of %s: %w", q.UserID, err)
	}
	jobs := make([]domain.Job, 0, lq.limit)
	sel, args, reversed, ok := lq.pageSQL(total)
	if !ok {
		return jobs, int(total), nil
	}
	ids, err := queryIDs(ctx, st, sel, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: %w", q.UserID, err)
	}
	if reversed {
		slices.Reverse(ids)
	}
	for _, id := range ids {
		var doc []byte
		if err := st.scan(ctx, getSQL, []any{id}, &doc); err != nil {
			return nil, 0, fmt.Errorf("list jobs of %s: load %s: %w", q.UserID, id, err)
		}
		j, err := decodeJob(doc)
		if err != nil {
			return nil, 0, fmt.Errorf("list jobs of %s: load %s: %w", q.UserID, id, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, int(total), nil
}

// listPlan is a validated ListQuery turned into SQL pieces.
type listPlan struct {
	cond   string // WHERE clause over indexed columns
	args   []any  // its arguments
	keys   []string
	desc   bool
	offset int64
	limit  int64
}

func planList(q domain.ListQuery) (listPlan, error) {
	if q.UserID == "" {
		return listPlan{}, domain.Validationf("listing jobs needs a user")
	}
	sortBy, err := domain.ParseSortBy(q.SortBy)
	if err != nil {
		return listPlan{}, err
	}
	page, limit := q.Page, q.Limit
	if page == 0 {
		page = 1
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if page < 1 {
		return listPlan{}, domain.Validationf("page must be at least 1, got %d", q.Page)
	}
	if limit < 1 || limit > MaxLimit {
		return listPlan{}, domain.Validationf("limit must be between 1 and %d, got %d", MaxLimit, q.Limit)
	}
	where := []string{"user_id = ?"}
	args := []any{q.UserID}
	if q.Status != "" {
		if _, ok := statusRank[q.Status]; !ok {
			return listPlan{}, domain.Validationf("status must be one of queued, processing, completed, failed; got %q", q.Status)
		}
		where = append(where, "status = ?")
		args = append(args, rankOf(q.Status))
	}
	if q.ProcessorType != "" {
		where = append(where, "processor_type = ?")
		args = append(args, string(q.ProcessorType))
	}
	var keys []string
	switch sortBy {
	case "updatedAt":
		keys = []string{"updated_at"}
	case "status":
		keys = []string{"status", "created_at"}
	default:
		keys = []string{"created_at"}
	}
	return listPlan{
		cond:   strings.Join(where, " AND "),
		args:   args,
		keys:   append(keys, "job_id"),
		desc:   q.Descending,
		offset: int64(page-1) * int64(limit),
		limit:  int64(limit),
	}, nil
}

func (p listPlan) countSQL() string {
	return "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE " + p.cond
}

// pageSQL returns the query for the page's ids, given the total. ok is false
// when the page is past the end. reversed says the query reads from the
// other end and its rows must be reversed: SQLite's OFFSET walks every
// skipped index entry, so a deep page is cheaper counted from the end.
func (p listPlan) pageSQL(total int64) (query string, args []any, reversed, ok bool) {
	if p.offset >= total {
		return "", nil, false, false
	}
	desc, offset, limit := p.desc, p.offset, p.limit
	if rest := total - offset - limit; offset > 0 && rest < offset {
		reversed, desc = true, !desc
		if rest < 0 {
			limit += rest // the last, partial page
			rest = 0
		}
		offset = rest
	}
	args = append(append([]any(nil), p.args...), limit, offset)
	return p.selectSQL(desc), args, reversed, true
}

// selectSQL is the page query in one direction. Only the page's ids are
// selected, so the walk stays inside a covering index.
func (p listPlan) selectSQL(desc bool) string {
	dir := " ASC"
	if desc {
		dir = " DESC"
	}
	return "SELECT job_id FROM jobs WHERE " + p.cond + " ORDER BY " + strings.Join(p.keys, dir+", ") + dir + " LIMIT ? OFFSET ?"
}

func queryIDs(ctx context.Context, st *txStmts, query string, args ...any) ([]string, error) {
	rows, err := st.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// EstimatedDuration returns the average processing seconds of the completed
// attempts of processor type t, or nil when none has completed yet.
func (v *JobView) EstimatedDuration(ctx context.Context, t domain.ProcessorType) (*float64, error) {
	if v.isClosed() {
		return nil, ErrClosed
	}
	if e, ok := v.cache.estimate(t); ok {
		return e, nil
	}
	gen := v.cache.generation()
	s, err := v.readStmts.get(ctx, durationSQL)
	if err != nil {
		return nil, fmt.Errorf("estimate duration of %s: %w", t, err)
	}
	var count int64
	var total float64
	err = s.QueryRowContext(ctx, string(t)).Scan(&count, &total)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && count == 0) {
		v.cache.storeEstimate(gen, t, nil)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("estimate duration of %s: %w", t, err)
	}
	avg := total / float64(count)
	v.cache.storeEstimate(gen, t, &avg)
	return &avg, nil
}

// Duration is the completed-attempt tally of one processor type.
type Duration struct {
	Count        int64
	TotalSeconds float64
}

// Durations returns the tallies behind EstimatedDuration, per processor
// type, so that a rebuilt view can be compared with a live one.
func (v *JobView) Durations(ctx context.Context) (map[domain.ProcessorType]Duration, error) {
	if v.isClosed() {
		return nil, ErrClosed
	}
	rows, err := v.read.QueryContext(ctx, "SELECT processor_type, count, total_seconds FROM processor_durations")
	if err != nil {
		return nil, fmt.Errorf("read durations: %w", err)
	}
	defer rows.Close()
	out := map[domain.ProcessorType]Duration{}
	for rows.Next() {
		var t string
		var d Duration
		if err := rows.Scan(&t, &d.Count, &d.TotalSeconds); err != nil {
			return nil, fmt.Errorf("read durations: %w", err)
		}
		out[domain.ProcessorType(t)] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read durations: %w", err)
	}
	return out, nil
}

// Snapshot returns every job in the view ordered by id, for comparing a
// rebuilt view with a live one (turbolane replay --verify). It reads the
// whole table into memory.
func (v *JobView) Snapshot(ctx context.Context) ([]domain.Job, error) {
	if v.isClosed() {
		return nil, ErrClosed
	}
	rows, err := v.read.QueryContext(ctx, "SELECT doc FROM jobs ORDER BY job_id")
	if err != nil {
		return nil, fmt.Errorf("snapshot view: %w", err)
	}
	defer rows.Close()
	jobs := []domain.Job{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("snapshot view: %w", err)
		}
		j, err := decodeJob(doc)
		if err != nil {
			return nil, fmt.Errorf("snapshot view: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshot view: %w", err)
	}
	return jobs, nil
}
