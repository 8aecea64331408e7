package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// TestPublishIndexesContents: a publish records where its release holds
// each content (meta.ContentIndex), for incremental publishes.
func TestPublishIndexesContents(t *testing.T) {
	p, dep := newPublisher(t, 1)
	v, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, 7)), Options{Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "<h1>page %d</h1>", 7))
	page := hex.EncodeToString(sum[:])
	got, err := p.Meta.(meta.ContentIndex).FindContents(t.Context(), []string{page})
	if err != nil || got[page].ReleaseSHA256 != v.ArtifactSHA256 || !got[page].Shared || got[page].Size != 15 {
		t.Fatalf("FindContents(index.html) = %+v, %v", got, err)
	}
}
