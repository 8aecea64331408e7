package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
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
	cfg.Database, _ = pgtest.FreshSchema(t)
	cfg.Blobs = s3URL(t)
}
