package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache. The store's SQL is a fixed
// set of strings plus a few filter combinations, well under this.
const maxCachedStmts = 256

// stmtCache keeps SQLite statements prepared on the pool's one connection,
// so the hot queries are parsed once instead of on every call (parsing was
// a tenth of a login's non-hashing CPU). PostgreSQL needs none: pgx caches
// statement descriptions per connection itself.
//
// A statement first seen inside a transaction runs unprepared that time,
// and is prepared in the background once the transaction has released the
// connection: preparing on the pool from inside the transaction would wait
// for the very connection the transaction holds.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
	wg      sync.WaitGroup
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared statement for query, or nil when the caller
// should run it unprepared. inTx says the caller holds the connection.
func (c *stmtCache) get(ctx context.Context, query string, inTx bool) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	if ok || c.pending[query] || len(c.stmts)+len(c.pending) >= maxCachedStmts {
		c.mu.Unlock()
		return st
	}
	c.pending[query] = true
	c.mu.Unlock()
	if inTx {
		c.wg.Go(func() { c.prepare(context.WithoutCancel(ctx), query) })
		return nil
	}
	return c.prepare(ctx, query)
}

func (c *stmtCache) prepare(ctx context.Context, query string) *sql.Stmt {
	st, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, query)
	if err != nil {
		// A bad statement fails where it runs, with the caller's error
		// handling; a closed pool ends the cache's work.
		return nil
	}
	c.stmts[query] = st
	return st
}

// close waits for background preparations and closes every statement.
// Call it before closing the pool.
func (c *stmtCache) close() {
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, q)
	}
}
