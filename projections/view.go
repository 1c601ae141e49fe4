package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors callers can branch on.
var (
	// ErrUnsequenced is returned by Apply for an event without a stream
	// sequence: the checkpoint could not tell whether it was applied before.
	ErrUnsequenced = errors.New("projections: event has no stream sequence")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("projections: view is closed")
)

// schemaVersion is stored in PRAGMA user_version. The view is rebuildable, so
// a file written by another schema version is simply dropped and recreated
// at checkpoint 0; Run then replays the stream from sequence 1.
const schemaVersion = 1

// memoryPath opens a private in-memory database (tests, throwaway views).
const memoryPath = ":memory:"

const defaultBatchSize = 256

// Option configures a JobView.
type Option func(*options) error

type options struct {
	batchSize   int
	readers     int
	busyTimeout int // milliseconds
	resubscribe time.Duration
	cacheJobs   int
}

// WithCacheSize sets how many decoded jobs Get keeps between the commits
// that change them (default 4096); 0 turns the cache of jobs and duration
// estimates off.
func WithCacheSize(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("projections: cache size must not be negative, got %d", n)
		}
		o.cacheJobs = n
		return nil
	}
}

// WithResubscribe makes Run subscribe again, after delay, when the source
// fails, instead of returning the error: a projection behind the polling
// API should outlive a dropped connection. Apply failures still end Run.
func WithResubscribe(delay time.Duration) Option {
	return func(o *options) error {
		if delay <= 0 {
			return fmt.Errorf("projections: resubscribe delay must be positive, got %s", delay)
		}
		o.resubscribe = delay
		return nil
	}
}

// WithBatchSize sets how many events Run applies at most in one transaction
// (default 256). Run never waits for a batch to fill.
func WithBatchSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("projections: batch size must be at least 1, got %d", n)
		}
		o.batchSize = n
		return nil
	}
}

// WithReaders sets the number of reader connections (default 4). It has no
// effect on ":memory:" views, which use one connection for everything.
func WithReaders(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("projections: readers must be at least 1, got %d", n)
		}
		o.readers = n
		return nil
	}
}

// JobView is the SQLite-backed job view, list index and stats. All methods
// are safe for concurrent use. Writes (Apply, Reset, Run) are serialised on
// one writer connection; reads use a separate pool and see the last
// committed batch.
type JobView struct {
	write *sql.DB // one connection: SQLite has one writer anyway, and Apply owns it
	read  *sql.DB // readers; the same pool as write for ":memory:"
	opts  options

	writeStmts, readStmts *stmtCache
	cache                 *readCache

	// applyMu serialises Apply and Reset so that the in-memory checkpoint
	// always equals the committed one.
	applyMu sync.Mutex

	mu       sync.Mutex
	seq      uint64        // committed checkpoint
	advanced chan struct{} // closed and replaced whenever seq changes
	closed   bool
}

// Open opens (creating if needed) the view stored in the SQLite file at path;
// ":memory:" gives a private in-memory view. It loads the checkpoint, so
// Checkpoint() is valid right away.
func Open(path string, opts ...Option) (*JobView, error) {
	o := options{batchSize: defaultBatchSize, readers: 4, busyTimeout: 5000, cacheJobs: defaultCacheJobs}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if path == "" {
		return nil, errors.New("projections: open: empty path")
	}
	v := &JobView{opts: o, advanced: make(chan struct{}), cache: newReadCache(o.cacheJobs)}
	if path == memoryPath {
		db, err := sql.Open("sqlite", memoryPath+"?"+dsn(o, false))
		if err != nil {
			return nil, fmt.Errorf("open in-memory view: %w", err)
		}
		// Every connection to ":memory:" is its own database, so the pool must
		// hold exactly one connection and never let it go.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		v.write, v.read = db, db
	} else {
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("projections: open %q: path must not contain '?' or '#'", path)
		}
		w, err := sql.Open("sqlite", path+"?"+dsn(o, false))
		if err != nil {
			return nil, fmt.Errorf("open view %s: %w", path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		v.write = w
		// sql.Open connects lazily, so no reader touches the file before
		// migrate below has created the schema and switched it to WAL.
		r, err := sql.Open("sqlite", path+"?"+dsn(o, true))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open view %s for reading: %w", path, err)
		}
		r.SetMaxOpenConns(o.readers)
		r.SetMaxIdleConns(o.readers)
		v.read = r
	}
	v.writeStmts, v.readStmts = newStmtCache(v.write), newStmtCache(v.read)
	if err := v.migrate(context.Background()); err != nil {
		v.Close()
		return nil, err
	}
	if err := v.writeStmts.prepare(context.Background(), applySQL...); err != nil {
		v.Close()
		return nil, fmt.Errorf("open view %s: %w", path, err)
	}
	seq, err := loadCheckpoint(context.Background(), v.write)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.seq = seq
	return v, nil
}

// dsn builds the driver parameters. WAL lets readers run while the writer
// commits. synchronous=NORMAL may lose the last few commits on power loss
// (never corrupt the file); that is fine here because the checkpoint is
// committed in the same transaction as the rows it covers, so a lost commit
// loses its checkpoint too and Run simply re-applies those events from the
// stream, which is the source of truth.
func dsn(o options, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(o.busyTimeout))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		// Take the write lock at BEGIN, so a write transaction never has to
		// upgrade a read lock and fail with SQLITE_BUSY halfway.
		q.Set("_txlock", "immediate")
	}
	return q.Encode()
}

// Close closes the database. It does not wait for Run: cancel its context
// first.
func (v *JobView) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	var errs []error
	for _, c := range []*stmtCache{v.readStmts, v.writeStmts} {
		if c != nil {
			errs = append(errs, c.close())
		}
	}
	if v.read != nil && v.read != v.write {
		errs = append(errs, v.read.Close())
	}
	if v.write != nil {
		errs = append(errs, v.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close view: %w", err)
	}
	return nil
}

// Checkpoint returns the stream sequence of the last applied event (0: none).
// Callers compute the projection lag by comparing it with the stream's last
// sequence.
func (v *JobView) Checkpoint() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seq
}

// WaitFor returns nil once the checkpoint is at least seq, or the context's
// error. It is how a handler reads its own write: append, then wait for the
// append's sequence before answering.
func (v *JobView) WaitFor(ctx context.Context, seq uint64) error {
	for {
		v.mu.Lock()
		cur, ch, closed := v.seq, v.advanced, v.closed
		v.mu.Unlock()
		if cur >= seq {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for view to reach sequence %d (at %d): %w", seq, cur, ctx.Err())
		}
	}
}

// setCheckpoint publishes a committed checkpoint and wakes every waiter.
func (v *JobView) setCheckpoint(seq uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seq == seq {
		return
	}
	v.seq = seq
	close(v.advanced)
	v.advanced = make(chan struct{})
}

func (v *JobView) isClosed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closed
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	job_id         TEXT PRIMARY KEY,
	user_id        TEXT NOT NULL,
	status         INTEGER NOT NULL, -- statusRank: lifecycle order
	processor_type TEXT NOT NULL,
	created_at     INTEGER NOT NULL, -- unix nanoseconds, UTC
	updated_at     INTEGER NOT NULL, -- unix nanoseconds, UTC
	doc            BLOB NOT NULL     -- the whole domain.Job as JSON
);
-- One index per (filter, sort key) combination, each ending in job_id, so
-- that every List query walks an index in order and never sorts: O(log n +
-- offset + page) index steps. The queries only touch indexed columns until
-- the page's ids are known, so the walk never reads the documents.
CREATE INDEX IF NOT EXISTS jobs_user_created             ON jobs (user_id, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_updated             ON jobs (user_id, updated_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_status_created      ON jobs (user_id, status, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_status_updated      ON jobs (user_id, status, updated_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_type_created        ON jobs (user_id, processor_type, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_type_updated        ON jobs (user_id, processor_type, updated_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_type_status_created ON jobs (user_id, processor_type, status, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_type_status_updated ON jobs (user_id, processor_type, status, updated_at, job_id);

-- Per-user counters, so that a page's total is a sum over at most
-- 4 statuses x 8 processor types instead of COUNT(*) over a million rows.
CREATE TABLE IF NOT EXISTS job_counts (
	user_id        TEXT NOT NULL,
	status         INTEGER NOT NULL,
	processor_type TEXT NOT NULL,
	n              INTEGER NOT NULL,
	PRIMARY KEY (user_id, status, processor_type)
) WITHOUT ROWID;

-- Completed attempts per processor type, behind EstimatedDuration.
CREATE TABLE IF NOT EXISTS processor_durations (
	processor_type TEXT PRIMARY KEY,
	count          INTEGER NOT NULL,
	total_seconds  REAL NOT NULL
) WITHOUT ROWID;

-- The last applied stream sequence, written in the same transaction as the
-- rows derived from it.
CREATE TABLE IF NOT EXISTS checkpoint (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO checkpoint (id, seq) VALUES (1, 0);
`

var tables = []string{"jobs", "job_counts", "processor_durations", "checkpoint"}

func (v *JobView) migrate(ctx context.Context) error {
	var ver int
	if err := v.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&ver); err != nil {
		return fmt.Errorf("read view schema version: %w", err)
	}
	tx, err := v.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin view migration: %w", err)
	}
	defer tx.Rollback()
	if ver != 0 && ver != schemaVersion {
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
				return fmt.Errorf("drop %s of view schema %d: %w", t, ver, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create view schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("set view schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit view migration: %w", err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadCheckpoint(ctx context.Context, q querier) (uint64, error) {
	var seq int64
	if err := q.QueryRowContext(ctx, "SELECT seq FROM checkpoint WHERE id = 1").Scan(&seq); err != nil {
		return 0, fmt.Errorf("load view checkpoint: %w", err)
	}
	return uint64(seq), nil
}
