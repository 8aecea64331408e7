package registry

import (
	"slices"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// partDigests leaves the caller's slice alone.
func TestPartDigestsCopies(t *testing.T) {
	ss := &meta.Upload{Parts: []meta.UploadPart{{Digest: "sha256:a"}, {Digest: "sha256:b"}, {Digest: "sha256:a"}}}
	backing := []string{"sha256:c", "keep-1", "keep-2", "keep-3"}
	got := partDigests(ss, backing[:1]...)
	if want := []string{"sha256:c", "sha256:a", "sha256:b"}; !slices.Equal(got, want) {
		t.Errorf("partDigests = %v, want %v", got, want)
	}
	if want := []string{"sha256:c", "keep-1", "keep-2", "keep-3"}; !slices.Equal(backing, want) {
		t.Errorf("partDigests wrote into the caller's slice: %v", backing)
	}
}
