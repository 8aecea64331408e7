package publish

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// manifestOf is the manifest of directory dir, as the CLI sends it.
func manifestOf(t testing.TB, dir string) *Manifest {
	t.Helper()
	m := &Manifest{Version: 1}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		e := ManifestEntry{Path: filepath.ToSlash(rel)}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			e.Type, e.Mode = release.TypeDir, 0o755
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = release.TypeSymlink, 0o777
			e.Link, err = os.Readlink(path)
		default:
			b, rerr := os.ReadFile(path)
			sum := sha256.Sum256(b)
			e.Type, e.Mode, e.Size, e.SHA256, err = release.TypeFile, 0o644, int64(len(b)), hex.EncodeToString(sum[:]), rerr
		}
		m.Entries = append(m.Entries, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tarOf is a tar of directory dir.
func tarOf(t testing.TB, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func randomContent(r *rand.Rand) []byte {
	n := r.IntN(3000)
	if r.IntN(4) == 0 {
		n = r.IntN(60 << 10) // small files that fill several shared frames
	}
	if r.IntN(8) == 0 {
		n = 70<<10 + r.IntN(5<<20) // own frames, sometimes several
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(4)) // compressible
	}
	return b
}

// TestIncrementalMatchesColdPack is the property of issue 17: after random
// edits (change, add, remove, rename) of a published tree, an incremental
// publish uploads only the contents no release holds and assembles a
// release byte-identical to a cold pack of the edited tree, copying
// compressed every frame the previous release holds (frame reuse).
func TestIncrementalMatchesColdPack(t *testing.T) {
	t.Run("SQLite+files", func(t *testing.T) {
		p, dep := newPublisher(t, 1)
		testIncrementalMatchesColdPack(t, p, dep)
	})
	t.Run("PostgreSQL+S3", func(t *testing.T) {
		p, dep := newScaleOutPublisher(t)
		testIncrementalMatchesColdPack(t, p, dep)
	})
}

func testIncrementalMatchesColdPack(t *testing.T, p *Publisher, dep *meta.Deployment) {
	p.Limits = release.Limits{MaxFiles: 10000, MaxBytes: 1 << 30}
	r := rand.New(rand.NewPCG(17, 17))
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range 40 {
		files[fmt.Sprintf("d%d/f%03d.js", i%5, i)] = randomContent(r)
	}
	write := func() {
		os.RemoveAll(dir)
		for name, b := range files {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Symlink("d0", filepath.Join(dir, "link"))
	}
	write()
	v, err := p.Publish(t.Context(), dep, bytes.NewReader(tarOf(t, dir)), Options{Actor: "tester", Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	dep, _ = p.Meta.GetDeployment(t.Context(), dep.ID)
	var prev release.Result
	if cold, err := release.PackDir(t.Context(), dir, io.Discard, release.PackOptions{}); err != nil || cold.SHA256 != v.ArtifactSHA256 {
		t.Fatalf("first publish %s, cold pack %v, %v", v.ArtifactSHA256, cold, err)
	} else {
		prev = *cold
	}
	var reusedAll int64
	for round := range 8 {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		fresh := map[string]bool{}
		for range 1 + r.IntN(4) {
			n := names[r.IntN(len(names))]
			if files[n] == nil {
				continue
			}
			switch r.IntN(5) {
			case 0: // change
				files[n] = randomContent(r)
				fresh[string(files[n])] = true
			case 1: // add
				k := fmt.Sprintf("d%d/new%d-%d.css", r.IntN(7), round, r.IntN(1000))
				files[k] = randomContent(r)
				fresh[string(files[k])] = true
			case 2: // remove
				delete(files, n)
			case 3: // rename
				files[strings.Replace(n, ".js", ".mjs", 1)] = files[n]
				delete(files, n)
			case 4: // add, first in path order
				k := fmt.Sprintf("0-first-%d-%d.txt", round, r.IntN(1000))
				files[k] = randomContent(r)
				fresh[string(files[k])] = true
			}
		}
		write()
		var cold bytes.Buffer
		want, err := release.PackDir(t.Context(), dir, &cold, release.PackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Even rounds find the active release's contents in its cached TOC
		// (the API's way), odd ones in the content index alone.
		to := dep
		if round%2 == 1 {
			to = nil
		}
		inc, err := p.StartIncrementalTo(t.Context(), to, manifestOf(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		sent := map[string]bool{}
		for _, sha := range inc.Missing {
			sent[sha] = true
		}
		for name, b := range files {
			sum := sha256.Sum256(b)
			sha := hex.EncodeToString(sum[:])
			if len(b) > 0 && sent[sha] != fresh[string(b)] {
				t.Errorf("round %d: %s missing=%v, new=%v", round, name, sent[sha], fresh[string(b)])
			}
			if sent[sha] {
				enc, _ := zstd.NewWriter(nil)
				if err := inc.PutContent(t.Context(), sha, bytes.NewReader(enc.EncodeAll(b, nil))); err != nil {
					t.Fatal(err)
				}
			}
		}
		v, err := p.Assemble(t.Context(), dep, inc, Options{Actor: "tester", Activate: true})
		inc.Close()
		if err != nil {
			t.Fatalf("round %d: Assemble: %v", round, err)
		}
		if v.ArtifactSHA256 != want.SHA256 {
			t.Fatalf("round %d: incremental release %s, cold pack %s", round, v.ArtifactSHA256, want.SHA256)
		}
		// Every frame the previous (active) release holds is copied.
		held := map[release.FrameKey]bool{}
		for _, f := range release.StoredFrames(prev.TOC) {
			held[f.Key] = true
		}
		var least int64
		for _, f := range release.StoredFrames(want.TOC) {
			if held[f.Key] {
				least += f.Length
			}
		}
		if inc.Reused < least || inc.Reused > want.TOC.DataLength {
			t.Errorf("round %d: reused %d compressed bytes; the previous release holds %d of the %d",
				round, inc.Reused, least, want.TOC.DataLength)
		}
		t.Logf("round %d: reused %d of %d compressed bytes", round, inc.Reused, want.TOC.DataLength)
		reusedAll += inc.Reused
		prev = *want
		dep, _ = p.Meta.GetDeployment(t.Context(), dep.ID)
	}
	if reusedAll == 0 {
		t.Error("no frame was reused in any round")
	}
	// The active release's tree again: its release, not packed again.
	inc, err := p.StartIncrementalTo(t.Context(), dep, manifestOf(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	if len(inc.Missing) != 0 {
		t.Errorf("unchanged tree: %d contents missing", len(inc.Missing))
	}
	v, err = p.Assemble(t.Context(), dep, inc, Options{Actor: "tester", Activate: true})
	if err != nil || v.ArtifactSHA256 != prev.SHA256 || inc.Reused != inc.Size || inc.Size != prev.Size {
		t.Errorf("unchanged tree: release %v (reused %d of %d), want the active %s without a pack; %v",
			v, inc.Reused, inc.Size, prev.SHA256, err)
	}
}

// TestIncrementalLyingClient: a content whose bytes are not its digest is
// refused and nothing of it stays; a content never sent fails the
// assembly, which stores nothing.
func TestIncrementalLyingClient(t *testing.T) {
	p, dep := newPublisher(t, 1)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644)
	inc, err := p.StartIncremental(t.Context(), manifestOf(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	if len(inc.Missing) != 1 {
		t.Fatalf("Missing = %v", inc.Missing)
	}
	err = inc.PutContent(t.Context(), inc.Missing[0], strings.NewReader("<h1>ho</h1>"))
	if !errors.Is(err, ErrContentMismatch) {
		t.Errorf("a lying content: %v, want 422", err)
	}
	if left, _ := os.ReadDir(filepath.Join(inc.stage, "parts")); len(left) != 0 {
		t.Errorf("a refused content left %d files", len(left))
	}
	_, err = p.Assemble(t.Context(), dep, inc, Options{Actor: "tester"})
	if !errors.Is(err, ErrContentsMissing) {
		t.Errorf("Assemble without the content: %v, want 409", err)
	}
	vs, err := p.Meta.ListVersions(t.Context(), dep.ID, 10, 0)
	if err != nil || len(vs) != 0 {
		t.Errorf("versions after refusals: %v, %v", vs, err)
	}
	var n int
	p.Blobs.List(t.Context(), func(blob.Info) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d blobs stored after refusals", n)
	}
}
