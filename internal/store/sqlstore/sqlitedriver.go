package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"

	"modernc.org/sqlite"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// maxCachedStmts bounds each connection's statement cache. The store's and
// River's SQL is a fixed set of strings plus a few filter combinations,
// well under this; past it, statements run unprepared.
const maxCachedStmts = 512

// stmtCachingConnector opens modernc SQLite connections that keep every
// single statement they run prepared, keyed by its text, so hot queries
// are parsed once per connection instead of on every call. It sits below
// database/sql, so River's queries (which arrive as text) benefit as much
// as the store's own. PostgreSQL needs none of this: pgx caches statement
// descriptions per connection itself.
type stmtCachingConnector struct{ driver.Connector }

func newSQLiteConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return stmtCachingConnector{c}, nil
}

// sqliteConn is what modernc's connection implements and database/sql uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// preparedStmt is what modernc's statements implement.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// Connect implements driver.Connector.
func (c stmtCachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlstore: SQLite connection %T lacks the driver interfaces the statement cache needs", conn)
	}
	return &cachingConn{sqliteConn: sc, stmts: map[string]*cachedStmt{}}, nil
}

// cachingConn is one SQLite connection with its statement cache.
// database/sql never uses a connection from two goroutines at once (it
// holds the connection's lock around every driver call, Rows.Close
// included), so the cache needs no lock of its own.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared statement; busy while a result set of it is
// open, since SQLite steps a statement through one result set at a time.
type cachedStmt struct {
	st   preparedStmt
	busy bool
}

// stmt returns the free cached statement for query, preparing it on first
// use, or nil when query should run unprepared: a statement whose rows are
// still open (a nested query of the same text), a full cache, or a
// statement that fails to prepare (it then fails the same way unprepared,
// with the caller's error handling). A script of several statements is
// cached too, harmlessly: modernc parses those on every run anyway.
func (c *cachingConn) stmt(ctx context.Context, query string) *cachedStmt {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil
		}
		return s
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	ps, ok := st.(preparedStmt)
	if !ok {
		_ = st.Close()
		return nil
	}
	s := &cachedStmt{st: ps}
	c.stmts[query] = s
	return s
}

// ExecContext implements driver.ExecerContext.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx, span := startSQLSpan(ctx, "sqlite", query)
	res, err := c.exec(ctx, query, args)
	telemetry.EndSpan(span, spanErr(err))
	return res, err
}

func (c *cachingConn) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if s := c.stmt(ctx, query); s != nil {
		return s.st.ExecContext(ctx, args)
	}
	return c.sqliteConn.ExecContext(ctx, query, args)
}

// QueryContext implements driver.QueryerContext.
// The span covers running the statement up to its first row; reading the
// rest is the caller's time.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx, span := startSQLSpan(ctx, "sqlite", query)
	rows, err := c.query(ctx, query, args)
	telemetry.EndSpan(span, spanErr(err))
	return rows, err
}

func (c *cachingConn) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s := c.stmt(ctx, query)
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, stmt: s}, nil
}

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		_ = s.st.Close()
		delete(c.stmts, q)
	}
	return c.sqliteConn.Close()
}

// cachedRows frees its statement for the next use when closed. It passes
// on the column type methods modernc's rows implement.
type cachedRows struct {
	driver.Rows
	stmt *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.stmt.busy = false
	return err
}

type sqliteRows interface {
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	return r.Rows.(sqliteRows).ColumnTypeDatabaseTypeName(i)
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	return r.Rows.(sqliteRows).ColumnTypeLength(i)
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	return r.Rows.(sqliteRows).ColumnTypeNullable(i)
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.Rows.(sqliteRows).ColumnTypePrecisionScale(i)
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	return r.Rows.(sqliteRows).ColumnTypeScanType(i)
}
