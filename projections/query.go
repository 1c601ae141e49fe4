package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// Default and maximum page size of List, as in the contract.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Get returns a job as the view holds it. It returns an error matching
// domain.ErrJobNotFound when the job was never created or was deleted.
// Ownership is the caller's business (domain.Job.OwnedBy).
func (v *JobView) Get(ctx context.Context, jobID string) (domain.Job, error) {
	if v.isClosed() {
		return domain.Job{}, ErrClosed
	}
	var doc []byte
	err := v.read.QueryRowContext(ctx, "SELECT doc FROM jobs WHERE job_id = ?", jobID).Scan(&doc)
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
// limit above MaxLimit or an unknown sort key is a domain validation error.
// The order is stable: ties on the sort key break on created time (for
// status) and then on the job id, in the same direction. Sorting by status
// follows the lifecycle: queued, processing, completed, failed. A page past
// the end is empty with the true total.
func (v *JobView) List(ctx context.Context, q domain.ListQuery) ([]domain.Job, int, error) {
	if v.isClosed() {
		return nil, 0, ErrClosed
	}
	sel, args, countSQL, countArgs, err := listSQL(q)
	if err != nil {
		return nil, 0, err
	}
	// One read transaction, so that the page and the total come from the
	// same snapshot.
	tx, err := v.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: begin: %w", q.UserID, err)
	}
	defer tx.Rollback()

	var total int
	if err := tx.QueryRowContext(ctx, countSQL, countArgs...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count jobs of %s: %w", q.UserID, err)
	}
	ids, err := queryIDs(ctx, tx, sel, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: %w", q.UserID, err)
	}
	jobs := make([]domain.Job, 0, len(ids))
	if len(ids) == 0 {
		return jobs, total, nil
	}
	byID, err := loadDocs(ctx, tx, ids)
	if err != nil {
		return nil, 0, fmt.Errorf("list jobs of %s: %w", q.UserID, err)
	}
	for _, id := range ids {
		j, ok := byID[id]
		if !ok {
			return nil, 0, fmt.Errorf("list jobs of %s: job %s vanished mid-read", q.UserID, id)
		}
		jobs = append(jobs, j)
	}
	return jobs, total, nil
}

// listSQL builds the page query (ids only, so it walks an index without
// touching documents) and the total query (over the counters).
func listSQL(q domain.ListQuery) (sel string, args []any, count string, countArgs []any, err error) {
	if q.UserID == "" {
		return "", nil, "", nil, domain.Validationf("listing jobs needs a user")
	}
	sortBy, err := domain.ParseSortBy(q.SortBy)
	if err != nil {
		return "", nil, "", nil, err
	}
	page, limit := q.Page, q.Limit
	if page == 0 {
		page = 1
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if page < 1 {
		return "", nil, "", nil, domain.Validationf("page must be at least 1, got %d", q.Page)
	}
	if limit < 1 || limit > MaxLimit {
		return "", nil, "", nil, domain.Validationf("limit must be between 1 and %d, got %d", MaxLimit, q.Limit)
	}
	where := []string{"user_id = ?"}
	args = []any{q.UserID}
	if q.Status != "" {
		if _, ok := statusRank[q.Status]; !ok {
			return "", nil, "", nil, domain.Validationf("status must be one of queued, processing, completed, failed; got %q", q.Status)
		}
		where = append(where, "status = ?")
		args = append(args, rankOf(q.Status))
	}
	if q.ProcessorType != "" {
		where = append(where, "processor_type = ?")
		args = append(args, string(q.ProcessorType))
	}
	cond := strings.Join(where, " AND ")
	countArgs = append([]any(nil), args...)

	dir := " ASC"
	if q.Descending {
		dir = " DESC"
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
	keys = append(keys, "job_id")
	order := strings.Join(keys, dir+", ") + dir

	offset := int64(page-1) * int64(limit)
	sel = "SELECT job_id FROM jobs WHERE " + cond + " ORDER BY " + order + " LIMIT ? OFFSET ?"
	args = append(args, limit, offset)
	count = "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE " + cond
	return sel, args, count, countArgs, nil
}

func queryIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
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

func loadDocs(ctx context.Context, tx *sql.Tx, ids []string) (map[string]domain.Job, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	query := "SELECT doc FROM jobs WHERE job_id IN (?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]domain.Job, len(ids))
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		j, err := decodeJob(doc)
		if err != nil {
			return nil, err
		}
		out[j.ID] = j
	}
	return out, rows.Err()
}

// EstimatedDuration returns the average processing seconds of the completed
// attempts of processor type t, or nil when none has completed yet.
func (v *JobView) EstimatedDuration(ctx context.Context, t domain.ProcessorType) (*float64, error) {
	if v.isClosed() {
		return nil, ErrClosed
	}
	var count int64
	var total float64
	err := v.read.QueryRowContext(ctx, "SELECT count, total_seconds FROM processor_durations WHERE processor_type = ?", string(t)).Scan(&count, &total)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && count == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("estimate duration of %s: %w", t, err)
	}
	avg := total / float64(count)
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
