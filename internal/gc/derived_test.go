package gc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// derived stores content as a derived release of kind from source.
func (e *env) derived(kind, source, content string) string {
	e.t.Helper()
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	if err := e.blobs.Put(e.t.Context(), digest.NewDigestFromEncoded(digest.SHA256, sha), int64(len(content)),
		bytes.NewReader([]byte(content))); err != nil {
		e.t.Fatal(err)
	}
	d := &meta.Derived{Kind: kind, SourceSHA256: source, SHA256: sha}
	if err := e.meta.PutDerived(e.t.Context(), d, meta.Release{SHA256: sha, Kind: kind, SizeBytes: int64(len(content)), URI: "x"}); err != nil {
		e.t.Fatal(err)
	}
	return sha
}

// stored reports whether the blob sha is in the store (derived test bytes
// are not release artifacts: hasBlob would try to verify them as such).
func (e *env) stored(sha string) bool {
	e.t.Helper()
	_, err := e.blobs.Stat(e.t.Context(), digest.NewDigestFromEncoded(digest.SHA256, sha))
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// image publishes an oci version whose manifest bytes are content (no
// registry rows: the release is rooted by its versions only).
func (e *env) image(d *meta.Deployment, content string, activate bool) *meta.Version {
	e.t.Helper()
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	if err := e.blobs.Put(e.t.Context(), digest.NewDigestFromEncoded(digest.SHA256, sha), int64(len(content)),
		bytes.NewReader([]byte(content))); err != nil {
		e.t.Fatal(err)
	}
	v, err := e.meta.CreateVersion(e.t.Context(), meta.NewVersion{DeploymentID: d.ID, Activate: activate, Actor: "test",
		Release: meta.Release{SHA256: sha, Kind: meta.KindOCI, SizeBytes: int64(len(content)), URI: "oci://x"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// TestDerivedKeptWithSource: a derived rootfs and the erofs image of it are
// kept, bytes and all, while the oci version they derive from is rooted
// (the orphan sweep leaves them alone too), and collected with it after.
func TestDerivedKeptWithSource(t *testing.T) {
	e := newEnv(t)
	c := e.collector(0, nil)
	d := &meta.Deployment{Name: "app", Kind: meta.KindOCI, RetentionDays: 2}
	if err := e.meta.CreateDeploymentWithPolicy(t.Context(), d, "test"); err != nil {
		t.Fatal(err)
	}
	v1 := e.image(d, `{"manifest":"one"}`, true)
	rootfs := e.derived(meta.DerivedRootfs, v1.ArtifactSHA256, "rootfs of one")
	erofs := e.derived(meta.DerivedErofs, rootfs, "erofs of the rootfs of one")
	e.clock.Add(time.Hour)
	v2 := e.image(d, `{"manifest":"two"}`, true)
	rootfs2 := e.derived(meta.DerivedRootfs, v2.ArtifactSHA256, "rootfs of two")
	e.clock.Add(2*day - time.Second)
	rep := e.run(c, false)
	for _, sha := range []string{rootfs, erofs, rootfs2} {
		if got := keptBy(rep, sha); got != meta.RootDerived {
			t.Errorf("%s: kept by %q, want derived", sha[:8], got)
		}
		if !e.stored(sha) {
			t.Errorf("%s: bytes deleted while its source is rooted", sha[:8])
		}
	}
	e.clock.Add(time.Second)
	rep = e.run(c, false)
	collected := map[string]bool{}
	for _, col := range rep.Collected {
		collected[col.SHA256] = true
	}
	if len(rep.Collected) != 3 || !collected[v1.ArtifactSHA256] || !collected[rootfs] || !collected[erofs] {
		t.Fatalf("collected %+v, want v1's release, its rootfs and erofs image", rep.Collected)
	}
	if got := e.version(v1.ID); got.Status != meta.StatusCollected {
		t.Errorf("v1: status %s, want collected", got.Status)
	}
	for _, sha := range []string{v1.ArtifactSHA256, rootfs, erofs} {
		if e.stored(sha) {
			t.Errorf("%s: collected but its bytes are still stored", sha[:8])
		}
	}
	for _, sha := range []string{v2.ArtifactSHA256, rootfs2} {
		if !e.stored(sha) {
			t.Errorf("%s: v2's bytes deleted", sha[:8])
		}
	}
	if got := keptBy(rep, rootfs2); got != meta.RootDerived {
		t.Errorf("rootfs of the active v2: kept by %q", got)
	}
}
