package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// Incremental is an incremental publish under way: its manifest, the
// contents the server lacked when it started, and a private staging
// directory that holds the parts uploaded so far (verified, by sha256).
// Close removes it and everything in it.
type Incremental struct {
	Manifest *Manifest
	Missing  []string
	stage    string
	sizes    map[string]int64 // content sha256 → size, from the manifest
	have     map[string]meta.Content
}

// StartIncremental checks manifest m and answers the contents no stored
// release holds (meta.ContentIndex; a store without it lacks them all).
func (p *Publisher) StartIncremental(ctx context.Context, m *Manifest) (*Incremental, error) {
	inc := &Incremental{Manifest: m, sizes: map[string]int64{}, have: map[string]meta.Content{}}
	for _, e := range m.Entries {
		if e.Type == release.TypeFile && e.Size > 0 {
			inc.sizes[e.SHA256] = e.Size
		}
	}
	found, err := p.Meta.FindContents(ctx, m.Digests())
	if err != nil {
		return nil, err
	}
	for sha, c := range found {
		if c.Size == inc.sizes[sha] {
			inc.have[sha] = c
		}
	}
	inc.Missing = m.Missing(func(sha string) bool { _, ok := inc.have[sha]; return ok })
	stage, err := os.MkdirTemp(p.StageDir, "incremental-")
	if err != nil {
		return nil, err
	}
	inc.stage = stage
	if err := os.Mkdir(filepath.Join(stage, "parts"), 0o700); err != nil {
		inc.Close()
		return nil, err
	}
	return inc, nil
}

// Close removes the publish's staging directory.
func (inc *Incremental) Close() error { return os.RemoveAll(inc.stage) }

// PutContent stores the content sha, sent zstd-compressed (or plain), if
// the manifest names it: its digest and size must be the manifest's, or it
// is refused (422 content-mismatch) and nothing of it is kept.
func (inc *Incremental) PutContent(ctx context.Context, sha string, body io.Reader) error {
	size, ok := inc.sizes[sha]
	if !ok {
		return refuse(ErrBadRequest, "content %s is not in the manifest", sha)
	}
	zr, err := release.Decompress(body)
	if err != nil {
		return err
	}
	defer zr.Close()
	dst := filepath.Join(inc.stage, "parts", sha)
	f, err := os.CreateTemp(filepath.Join(inc.stage, "parts"), "put-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(zr, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: reading content %s: %v", release.ErrInvalid, sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sha {
		return refuse(ErrContentMismatch,
			"content sent as %s (%d bytes) has sha256 %s and %d bytes: refused", sha, size, got, n)
	}
	return os.Rename(f.Name(), dst)
}

// Assemble builds the tree of the manifest from the uploaded parts and the
// contents stored releases hold (ranged reads of their frames, checked
// against their sha256), packs it, stores the release and creates the
// version, as Publish does for a tar upload. A content neither uploaded
// nor stored answers 409 contents-missing. The release is byte-identical
// to a cold `cairn pack` of the tree.
func (p *Publisher) Assemble(ctx context.Context, dep *meta.Deployment, inc *Incremental, o Options) (*meta.Version, error) {
	if dep.Kind != meta.KindStatic {
		return nil, refuse(ErrWrongKind, "deployment %q has kind %q; incremental publishes make static releases", dep.Name, dep.Kind)
	}
	if o.Entrypoint == "" {
		o.Entrypoint = "index.html"
	} else if err := release.CheckPath(o.Entrypoint); err != nil {
		return nil, refuse(ErrBadRequest, "entrypoint: %s", err)
	}
	tree := filepath.Join(inc.stage, "tree")
	if err := os.RemoveAll(tree); err != nil {
		return nil, err
	}
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	drops := map[string]func(){}
	defer func() {
		for _, drop := range drops {
			drop()
		}
	}()
	for _, e := range inc.Manifest.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dst := filepath.Join(tree, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		var err error
		switch e.Type {
		case release.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case release.TypeSymlink:
			err = os.Symlink(e.Link, dst)
		default:
			err = p.placeContent(ctx, inc, e, dst, drops)
		}
		if err != nil {
			return nil, err
		}
	}
	m, err := json.Marshal(inc.Manifest)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(m)
	return p.publishTree(ctx, dep, tree, inc.stage, o, sum[:])
}

// placeContent writes file e at dst: a hard link to its uploaded part, or
// its content read from the stored release that holds it (under a GC
// lease, kept in drops until the publish ends).
func (p *Publisher) placeContent(ctx context.Context, inc *Incremental, e ManifestEntry, dst string, drops map[string]func()) error {
	if e.Size == 0 {
		return writeFile(dst, e.Mode, bytes.NewReader(nil))
	}
	part := filepath.Join(inc.stage, "parts", e.SHA256)
	if _, err := os.Stat(part); err == nil {
		f, err := os.Open(part)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeFile(dst, e.Mode, f)
	}
	c, ok := inc.have[e.SHA256]
	if !ok {
		return refuse(ErrContentsMissing, "content %s of %q was not uploaded", e.SHA256, e.Path)
	}
	if _, held := drops[c.ReleaseSHA256]; !held {
		drop, err := lease.Hold(ctx, p.Meta, c.ReleaseSHA256)
		if err != nil {
			return err
		}
		drops[c.ReleaseSHA256] = drop
	}
	rc, err := p.Blobs.Open(ctx, digest.NewDigestFromEncoded(digest.SHA256, c.ReleaseSHA256), c.FrameOffset, c.FrameLength)
	if err != nil {
		return fmt.Errorf("read content %s from release %s: %w", e.SHA256, c.ReleaseSHA256, err)
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zr.Close()
	var r io.Reader = zr
	if c.Shared {
		if _, err := io.CopyN(io.Discard, zr, c.InFrame); err != nil {
			return fmt.Errorf("release %s: content %s: %w", c.ReleaseSHA256, e.SHA256, err)
		}
	}
	h := sha256.New()
	r = io.TeeReader(io.LimitReader(r, e.Size), h)
	if err := writeFile(dst, e.Mode, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("release %s holds %s where its index says %s: %w", c.ReleaseSHA256, got, e.SHA256, release.ErrCorrupt)
	}
	return nil
}

func writeFile(dst string, mode uint32, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(mode))
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
