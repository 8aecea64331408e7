// Package pgtest gives tests a fresh schema on the PostgreSQL test server
// (CAIRN_TEST_POSTGRES, default 127.0.0.1:5432 database test). When the
// server is unreachable a test is skipped, or fails under CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test server; CAIRN_TEST_POSTGRES overrides it.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test server's URL.
func URL() string {
	if u := os.Getenv("CAIRN_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Admin connects to the test server, closed when t ends.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, URL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set CAIRN_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// FreshSchema creates an empty schema, dropped when t ends (after what was
// opened later is closed), and returns a URL whose connections use it
// (search_path) and carry its name (application_name).
func FreshSchema(t testing.TB) (u, schema string) {
	t.Helper()
	a := Admin(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "cairn_test_" + hex.EncodeToString(b[:])
	if _, err := a.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := a.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	p, err := url.Parse(URL())
	if err != nil {
		t.Fatalf("CAIRN_TEST_POSTGRES must be a URL: %v", err)
	}
	q := p.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	p.RawQuery = q.Encode()
	return p.String(), schema
}

// CheckClosed makes t fail, when it ends, if a connection named after
// schema is still open. Call it right after FreshSchema, before opening
// stores, so that it runs after they are closed and before the schema is
// dropped.
func CheckClosed(t testing.TB, a *pgx.Conn, schema string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var n int
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			err := a.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, schema).Scan(&n)
			if err != nil || n == 0 || time.Now().After(deadline) {
				break
			}
		}
		if n > 0 {
			t.Errorf("%d connection(s) of %s still open after Close", n, schema)
		}
	})
}
