package secret

// Column is a database column holding sealed values, described by the
// package that seals them (which alone knows their associated data), so
// that a master key rotation and a restore check can reach every sealed
// value without knowing each package's rules.
type Column struct {
	// Table and Name name the column.
	Table, Name string
	// ID is the table's primary key column: rows are visited in its order.
	ID string
	// Context lists further columns of the row (read as text) that the
	// associated data is built from.
	Context []string
	// Where, when set, is a constant SQL condition selecting the rows
	// that hold sealed values (e.g. one job kind, or a non-NULL column).
	Where string
	// JSON marks a JSON column (jsonb on PostgreSQL; on SQLite, binary
	// JSONB as River writes it): Rewrite gets and returns JSON text.
	JSON bool
	// Rewrite passes every sealed value inside a stored value through f,
	// with its associated data, and returns the stored value rebuilt from
	// what f returned. row is the ID column's value, then the Context
	// columns', as text. Plain builds it for a column that is one sealed
	// value.
	Rewrite func(stored []byte, row []string, f func(sealed, ad []byte) ([]byte, error)) ([]byte, error)
}

// Plain is the Rewrite of a column whose value is itself one sealed value,
// associated with ad(row).
func Plain(ad func(row []string) []byte) func([]byte, []string, func(sealed, ad []byte) ([]byte, error)) ([]byte, error) {
	return func(stored []byte, row []string, f func(sealed, ad []byte) ([]byte, error)) ([]byte, error) {
		return f(stored, ad(row))
	}
}

// String names the column as table.column.
func (c Column) String() string { return c.Table + "." + c.Name }
