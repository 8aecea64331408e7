package metatest

import (
	"database/sql"
	"fmt"
	"testing"
)

// MigrationRows is the schema_migrations table of the database that
// driver opens at dsn, as text, for the backends' reopen tests.
func MigrationRows(t *testing.T, driver, dsn string) string {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("v%d@%d;", v, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
