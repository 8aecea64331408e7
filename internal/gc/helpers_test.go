package gc_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

const day = 24 * time.Hour

// store counts the HoldRelease calls that found a deletion in progress.
type store struct {
	*sqlite.Store
	waited atomic.Int64
}

func (s *store) HoldRelease(ctx context.Context, sha, holder string, ttl time.Duration) (bool, error) {
	deleting, err := s.Store.HoldRelease(ctx, sha, holder, ttl)
	if deleting {
		s.waited.Add(1)
	}
	return deleting, err
}

// env is real SQLite metadata and filesystem blobs on a fake clock.
type env struct {
	t     *testing.T
	clock *fakeclock.Clock
	meta  *store
	blobs *fs.Store
	pub   *publish.Publisher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"), sqlite.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s := &store{Store: m}
	pub := &publish.Publisher{Meta: s, Blobs: b, StageDir: t.TempDir(),
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	return &env{t: t, clock: c, meta: s, blobs: b, pub: pub}
}

// collector returns a Collector on e with grace g (and Changed, if given).
func (e *env) collector(g time.Duration, changed func()) *gc.Collector {
	e.t.Helper()
	c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Grace: g, Now: e.clock.Now, Changed: changed})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) run(c *gc.Collector, dry bool) *gc.Report {
	e.t.Helper()
	rep, err := c.Run(e.t.Context(), dry)
	if err != nil {
		e.t.Fatalf("Run(dry=%v): %v", dry, err)
	}
	return rep
}

// deployment creates a static deployment with the given policy.
func (e *env) deployment(name string, retention, keep int) *meta.Deployment {
	e.t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindStatic, RetentionDays: retention, KeepVersions: keep}
	if err := e.meta.CreateDeploymentWithPolicy(e.t.Context(), d, "test"); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// publish publishes a one-page site whose bytes depend only on tag.
func (e *env) publish(d *meta.Deployment, tag string, activate bool) *meta.Version {
	e.t.Helper()
	v, err := e.pub.Publish(e.t.Context(), d, bytes.NewReader(siteTar(tag)), publish.Options{Activate: activate, Actor: "test"})
	if err != nil {
		e.t.Fatalf("publish %s: %v", tag, err)
	}
	return v
}

func siteTar(tag string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := "<h1>" + tag + "</h1>"
	tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

func (e *env) version(id string) *meta.Version {
	e.t.Helper()
	v, err := e.meta.GetVersion(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// hasBlob reports whether the release bytes of v are stored; stored bytes
// must verify.
func (e *env) hasBlob(sha string) bool {
	e.t.Helper()
	d := digest.NewDigestFromEncoded(digest.SHA256, sha)
	info, err := e.blobs.Stat(e.t.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	rc, err := e.blobs.Open(e.t.Context(), d, 0, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(e.t.TempDir(), "artifact")
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(rc); err != nil {
		e.t.Fatal(err)
	}
	if _, err := release.Verify(e.t.Context(), f, info.Size); err != nil {
		e.t.Errorf("release %s does not verify: %v", sha, err)
	}
	return true
}

// wantKept checks v's state: kept (not collected, bytes stored) or collected.
func (e *env) wantKept(v *meta.Version, kept bool) {
	e.t.Helper()
	got := e.version(v.ID)
	switch {
	case kept && (got.CollectedAt != nil || !e.hasBlob(v.ArtifactSHA256)):
		e.t.Errorf("v%d (%s): collected %v, want kept with its bytes", v.VersionNumber, got.Status, got.CollectedAt)
	case !kept && (got.CollectedAt == nil || got.Status != meta.StatusCollected || got.ArtifactSHA256 != v.ArtifactSHA256):
		e.t.Errorf("v%d: status %s, collected_at %v, want collected with its hashes", v.VersionNumber, got.Status, got.CollectedAt)
	case !kept && e.hasBlob(v.ArtifactSHA256):
		e.t.Errorf("v%d: collected but its bytes are still stored", v.VersionNumber)
	}
}

// keptBy returns the root the report gives for sha ("" if none).
func keptBy(rep *gc.Report, sha string) string {
	for _, k := range rep.Kept {
		if k.SHA256 == sha {
			return k.Reason
		}
	}
	return ""
}
