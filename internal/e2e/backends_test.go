package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/server"
)

// The e2e tests run on the embedded default (SQLite + files). With
// CAIRN_E2E_BACKENDS=scale-out they run unchanged on PostgreSQL
// (CAIRN_TEST_POSTGRES) and S3 (S3_ENDPOINT and the AWS_* variables).
func scaleOut() bool { return os.Getenv("CAIRN_E2E_BACKENDS") == "scale-out" }

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// useBackends points cfg at PostgreSQL and S3 when scaleOut(), with a fresh
// schema and bucket that are removed when the test ends.
func useBackends(t *testing.T, cfg *server.Config) {
	if !scaleOut() {
		return
	}
	pg := os.Getenv("CAIRN_TEST_POSTGRES")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("scale-out e2e needs PostgreSQL: %v", err)
	}
	schema := randomName("cairn_e2e_")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cfg.Database = u.String()
	cfg.Blobs = s3URL(t)
}
