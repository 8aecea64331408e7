package derive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release/unpack"
)

// ErofsTime is the one timestamp every inode of an erofs image gets (-T).
// A rootfs release keeps no mtimes (its format fixes them), so nothing is
// lost.
const ErofsTime = 0

// ErofsUUID is the filesystem UUID of the erofs image of rootfs release
// source: fixed by the source, so that separate builds agree and distinct
// trees get distinct UUIDs (an RFC 9562 version 8 UUID of
// sha256("cairn-erofs:" + source)).
func ErofsUUID(source string) string {
	sum := sha256.Sum256([]byte("cairn-erofs:" + source))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant RFC 9562
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ErofsArgs are the pinned mkfs.erofs arguments that build the image of
// rootfs release source from directory dir into file img: fixed time and
// UUID, no compression (the image is a boot drive or an overlay lower,
// read in place), quiet. Measured with erofs-utils 1.5 (Debian bookworm):
// separate unpacks of one release give byte-identical images.
func ErofsArgs(source, img, dir string) []string {
	return []string{"--quiet", fmt.Sprintf("-T%d", ErofsTime), "-U", ErofsUUID(source), "--preserve-mtime", img, dir}
}

// SafeUnpack unpacks the rootfs release in artifact into the empty
// directory dir with the safe unpacker (internal/release/unpack: every
// path resolved inside dir, devices allowed, the tree digest checked
// against the TOC; a failure removes what it wrote).
func SafeUnpack(ctx context.Context, artifact, dir string) error {
	f, err := os.Open(artifact)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := unpack.Unpack(ctx, f, fi.Size(), dir, unpack.Options{AllowDevices: true}); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(artifact), err)
	}
	return nil
}

// Erofs returns the erofs image derived from rootfs release source,
// building it first if it has not been: the release unpacked into a
// scratch directory (Config.Unpack) and built with mkfs.erofs ErofsArgs.
// Unknown release: meta.ErrNotFound; collected: meta.ErrGone; not a
// rootfs: meta.ErrInvalid; no mkfs.erofs: ErrUnavailable.
func (d *Deriver) Erofs(ctx context.Context, source string) (*Result, error) {
	rel, err := d.cfg.Meta.GetRelease(ctx, source)
	if err != nil {
		return nil, err
	}
	if rel.CollectedAt != nil {
		return nil, fmt.Errorf("%w: release %s", meta.ErrGone, source)
	}
	if rel.Kind != meta.KindRootfs {
		return nil, fmt.Errorf("%w: release %s is of kind %s: erofs images are built from rootfs releases", meta.ErrInvalid, source, rel.Kind)
	}
	mkfs, err := d.mkfs()
	if err != nil {
		return nil, err
	}
	return d.once(ctx, meta.DerivedErofs, source, func(ctx context.Context) (*Result, error) {
		return d.buildErofs(ctx, mkfs, source)
	})
}

func (d *Deriver) mkfs() (string, error) {
	name := d.cfg.Mkfs
	if name == "" {
		name = "mkfs.erofs"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (install erofs-utils)", ErrUnavailable, name)
	}
	return p, nil
}

func (d *Deriver) buildErofs(ctx context.Context, mkfs, source string) (*Result, error) {
	scratch, err := os.MkdirTemp(d.cfg.TempDir, "derive-erofs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	artifact := filepath.Join(scratch, "rootfs.tar.zst")
	if err := d.fetch(ctx, source, artifact); err != nil {
		return nil, err
	}
	tree := filepath.Join(scratch, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	if err := d.cfg.Unpack(ctx, artifact, tree); err != nil {
		return nil, err
	}
	os.Remove(artifact)
	img := filepath.Join(scratch, "image.erofs")
	if err := BuildErofs(ctx, mkfs, source, img, tree); err != nil {
		return nil, err
	}
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	d.cfg.Log.Info("derived erofs", "source", source, "sha256", sum, "size", size)
	return d.store(ctx, f, &meta.Derived{Kind: meta.DerivedErofs, SourceSHA256: source, SHA256: sum},
		meta.Release{SHA256: sum, Kind: meta.DerivedErofs, SizeBytes: size})
}

// BuildErofs runs mkfs (the mkfs.erofs binary) with ErofsArgs.
func BuildErofs(ctx context.Context, mkfs, source, img, dir string) error {
	out, err := exec.CommandContext(ctx, mkfs, ErofsArgs(source, img, dir)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.erofs: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fetch copies the blob of release sha into the file path, verifying it.
func (d *Deriver) fetch(ctx context.Context, sha, path string) error {
	dg := digest.NewDigestFromEncoded(digest.SHA256, sha)
	rc, err := d.cfg.Blobs.Open(ctx, dg, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	v := dg.Verifier()
	if _, err := io.Copy(io.MultiWriter(f, v), rc); err != nil {
		return err
	}
	if !v.Verified() {
		return errors.New("derive: stored release " + sha + " does not match its sha256")
	}
	return f.Close()
}
