package projections

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps prepared statements per SQL text. modernc.org/sqlite
// prepares every unprepared query afresh, and parsing was a fifth of the
// time of building a 200k-job view before this cache (BenchmarkApply).
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement, preparing it on first use. It needs a
// free connection of the pool, so it must not be called while the caller
// holds the pool's only connection in a transaction (use prepare first).
//
// The mutex is not held while preparing: a caller waiting for a free
// connection must not block the transactions that hold the connections
// (they call lookup), or neither ever gets on (TestReadsDuringRun hung so).
// Two callers may then prepare the same query; the second one closes its
// copy.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if s := c.lookup(query); s != nil {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		_ = s.Close()
		return prev, nil
	}
	c.m[query] = s
	return s, nil
}

// prepare makes sure the statements are cached.
func (c *stmtCache) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		if _, err := c.get(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, s := range c.m {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}

// txStmts runs statements inside one transaction. A statement in the cache
// is bound to the transaction (database/sql re-uses the copy already prepared
// on the transaction's connection, so that costs no parse); any other is
// prepared on the transaction itself and dropped with it, because preparing
// on the pool could wait forever for the connection the transaction holds.
type txStmts struct {
	tx    *sql.Tx
	cache *stmtCache
	m     map[string]*sql.Stmt
}

func newTxStmts(tx *sql.Tx, cache *stmtCache) *txStmts {
	return &txStmts{tx: tx, cache: cache, m: map[string]*sql.Stmt{}}
}

func (t *txStmts) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.m[query]; ok {
		return s, nil
	}
	var ts *sql.Stmt
	if s := t.cache.lookup(query); s != nil {
		ts = t.tx.StmtContext(ctx, s)
	} else {
		var err error
		if ts, err = t.tx.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", query, err)
		}
	}
	t.m[query] = ts
	return ts, nil
}

func (t *txStmts) exec(ctx context.Context, query string, args ...any) error {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

// scan runs a one-row query; it returns sql.ErrNoRows when there is none.
func (t *txStmts) scan(ctx context.Context, query string, args []any, dest ...any) error {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return err
	}
	return s.QueryRowContext(ctx, args...).Scan(dest...)
}

func (t *txStmts) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}
