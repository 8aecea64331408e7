package publish

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
	"github.com/cairnhq/cairn/internal/release"
)

// newScaleOutPublisher is newPublisher on PostgreSQL (pgtest, a fresh
// schema) and S3 (CAIRN_TEST_S3_ENDPOINT or S3_ENDPOINT, a fresh
// bucket; scripts/test starts one); skipped without them.
func newScaleOutPublisher(t *testing.T) (*Publisher, *meta.Deployment) {
	t.Helper()
	ep := cmp.Or(os.Getenv("CAIRN_TEST_S3_ENDPOINT"), os.Getenv("S3_ENDPOINT"))
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no S3 server under CI=true: set S3_ENDPOINT (scripts/test starts one)")
		}
		t.Skip("no S3 server: set S3_ENDPOINT (scripts/test starts one)")
	}
	u, _ := pgtest.FreshSchema(t) // skips (or fails under CI=true) without PostgreSQL
	store, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var b [6]byte
	rand.Read(b[:])
	region := cmp.Or(os.Getenv("AWS_REGION"), "us-east-1")
	blobs, err := s3.New(t.Context(), "s3://cairn-publish-"+hex.EncodeToString(b[:])+"?endpoint="+url.QueryEscape(ep)+"&region="+region)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var all []blob.Info
		blobs.List(context.Background(), func(i blob.Info) error { all = append(all, i); return nil })
		for _, i := range all {
			blobs.Delete(context.Background(), i.Digest)
		}
	})
	dep := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := store.CreateDeployment(t.Context(), dep, "tester"); err != nil {
		t.Fatal(err)
	}
	return &Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(), MaxPacks: 1,
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}, dep
}
