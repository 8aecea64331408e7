package e2e

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/s3"
)

// s3URL returns the --blobs URL of a fresh bucket on the S3 server named by
// S3_ENDPOINT; its objects are deleted when the test ends.
func s3URL(t *testing.T) string {
	ep := os.Getenv("S3_ENDPOINT")
	if ep == "" {
		t.Fatal("scale-out e2e needs S3_ENDPOINT (and AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	u := "s3://" + randomName("cairn-e2e-") + "?endpoint=" + url.QueryEscape(ep) + "&region=" + region
	t.Cleanup(func() {
		st, err := s3.New(context.Background(), u)
		if err != nil {
			return
		}
		var all []blob.Info
		st.List(context.Background(), func(i blob.Info) error { all = append(all, i); return nil })
		for _, i := range all {
			st.Delete(context.Background(), i.Digest)
		}
	})
	return u
}

// storeCount counts the blobs in an S3 --blobs URL.
func storeCount(t *testing.T, u string) int {
	st, err := s3.New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.List(context.Background(), func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
