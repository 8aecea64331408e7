package blob_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
)

// bare is a Store that is not a Locator.
type bare struct{ blob.Store }

// blank is a Locator that cannot name anything.
type blank struct{ blob.Store }

func (blank) URI(digest.Digest) string { return "" }

type named struct{ blob.Store }

func (named) URI(d digest.Digest) string { return "file:///blobs/" + d.Encoded() }

// TestURIOf: a blob's URI is never empty, whatever the store.
func TestURIOf(t *testing.T) {
	d := digest.FromString("x")
	for name, c := range map[string]struct {
		s    blob.Store
		want string
	}{
		"not a locator":  {bare{}, "cairn:" + d.String()},
		"empty locator":  {blank{}, "cairn:" + d.String()},
		"naming locator": {named{}, "file:///blobs/" + d.Encoded()},
	} {
		if got := blob.URIOf(c.s, d); got != c.want || strings.TrimSpace(got) == "" {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
