package derive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"io"
	"log/slog"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// ErrUnavailable: this server cannot make the artifact asked for (no rootfs
// packer, no mkfs.erofs, no registry).
var ErrUnavailable = errors.New("derive: not available on this server")

// Packer packs a tar stream of a Linux root filesystem into a rootfs
// release written to w (the rootfs format: owners, modes, hard links,
// devices kept; deterministic). scratchDir is where it may spool. It is
// release.PackRootfsTar with RootfsOptions{ScratchDir: scratchDir}.
type Packer func(ctx context.Context, r io.Reader, w io.Writer, scratchDir string) (*release.Result, error)

// Images opens a stored OCI image (the registry implements it): the image
// that manifest d of repository repo describes (an index resolved to its
// platform image), and that image's manifest digest.
type Images interface {
	Image(ctx context.Context, repo string, d digest.Digest) (v1.Image, digest.Digest, error)
}

// Store is what a Deriver needs of the metadata store: records, the
// derivations, and leases and locks (so that derivations happen once across
// processes).
type Store interface {
	meta.Store
	meta.Derivations
	meta.Leases
}

// Config holds what a Deriver needs.
type Config struct {
	Meta   Store
	Blobs  blob.Store
	Images Images // nil: no rootfs from OCI versions (ErrUnavailable)
	Pack   Packer // nil: no rootfs from OCI versions (ErrUnavailable)
	// Mkfs is the mkfs.erofs binary ("" finds it on $PATH; missing: erofs
	// images are ErrUnavailable).
	Mkfs string
	// Unpack unpacks a rootfs release (file artifact) into the empty
	// directory dir as root; nil: SafeUnpack.
	Unpack  func(ctx context.Context, artifact, dir string) error
	TempDir string // scratch space; "" = os.TempDir()
	// Timeout bounds one derivation, which runs on when the callers that
	// asked for it give up; 0 means DefaultTimeout.
	Timeout time.Duration
	Log     *slog.Logger
}

// DefaultTimeout bounds a derivation unless Config.Timeout says otherwise.
const DefaultTimeout = 30 * time.Minute

// Deriver makes derived artifacts on demand, once: concurrent callers in
// one process share one derivation (singleflight), and processes sharing a
// metadata store take a lock per derivation (meta.Leases.AcquireLock) and
// wait for its record.
type Deriver struct {
	cfg   Config
	group singleflight.Group
	// derived is called after each derivation this Deriver made (tests).
	derived func(kind, source string)
}

// New returns a Deriver; cfg.Meta must implement meta.Derivations.
func New(cfg Config) (*Deriver, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Unpack == nil {
		cfg.Unpack = SafeUnpack
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Deriver{cfg: cfg}, nil
}

// Result is a derived artifact and its release.
type Result struct {
	Derived meta.Derived `json:"derived"`
	Release meta.Release `json:"release"`
}

// lockTTL bounds how long a dead deriver's lock holds others back; a live
// one renews it every lockTTL/3.
const lockTTL = time.Minute

// lockPoll is how often a caller waiting for another process's derivation
// looks for its record.
const lockPoll = 100 * time.Millisecond

// once returns the derivation of kind from source: the recorded one, or
// the one make produces, made once across goroutines and processes.
func (d *Deriver) once(ctx context.Context, kind, source string, make func(ctx context.Context) (*Result, error)) (*Result, error) {
	if r, err := d.recorded(ctx, kind, source); r != nil || err != nil {
		return r, err
	}
	ch := d.group.DoChan(kind+":"+source, func() (any, error) {
		// The derivation outlives a caller that gives up: others may wait for it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
		defer cancel()
		unlock, r, err := d.lock(ctx, kind, source)
		if r != nil || err != nil {
			return r, err
		}
		defer unlock()
		if r, err := d.recorded(ctx, kind, source); r != nil || err != nil {
			return r, err
		}
		r, err = make(ctx)
		if err == nil && d.derived != nil {
			d.derived(kind, source)
		}
		return r, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Result), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// recorded returns the recorded derivation with its release, or nil.
func (d *Deriver) recorded(ctx context.Context, kind, source string) (*Result, error) {
	rec, err := d.cfg.Meta.GetDerived(ctx, kind, source)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rel, err := d.cfg.Meta.GetRelease(ctx, rec.SHA256)
	if err != nil {
		return nil, err
	}
	return &Result{Derived: *rec, Release: *rel}, nil
}

// lock takes the cross-process lock of one derivation, renewed until
// unlock is called. While another process holds it, lock waits, and
// returns that process's result as soon as it is recorded.
func (d *Deriver) lock(ctx context.Context, kind, source string) (unlock func(), r *Result, err error) {
	l := d.cfg.Meta
	name := "derive:" + kind + ":" + source
	holder := lease.ProcessOwner() + "/derive-" + randomID()
	for {
		got, err := l.AcquireLock(ctx, name, holder, lockTTL)
		if err != nil {
			return nil, nil, err
		}
		if got {
			break
		}
		if r, err := d.recorded(ctx, kind, source); r != nil || err != nil {
			return nil, r, err
		}
		select {
		case <-time.After(lockPoll):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.AcquireLock(ctx, name, holder, lockTTL)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		l.ReleaseLock(ctx, name, holder)
	}, nil, nil
}

// store stores the artifact in file f (sha256 sha, size bytes) and records
// it as derived from source, under a GC lease so that no collection of sha
// runs in between.
func (d *Deriver) store(ctx context.Context, f *os.File, rec *meta.Derived, rel meta.Release) (*Result, error) {
	drop, err := lease.Hold(ctx, d.cfg.Meta, rec.SHA256)
	if err != nil {
		return nil, err
	}
	defer drop()
	dg := digest.NewDigestFromEncoded(digest.SHA256, rec.SHA256)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := d.cfg.Blobs.Put(ctx, dg, rel.SizeBytes, f); err != nil {
		return nil, err
	}
	rel.URI = blob.URIOf(d.cfg.Blobs, dg)
	if err := d.cfg.Meta.PutDerived(ctx, rec, rel); err != nil {
		return nil, err
	}
	stored, err := d.cfg.Meta.GetRelease(ctx, rec.SHA256)
	if err != nil {
		return nil, err
	}
	return &Result{Derived: *rec, Release: *stored}, nil
}

// tempFile makes a scratch file removed by the returned func.
func (d *Deriver) tempFile(pattern string) (*os.File, func(), error) {
	f, err := os.CreateTemp(d.cfg.TempDir, pattern)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close(); os.Remove(f.Name()) }, nil
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
