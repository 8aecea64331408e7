// Package publish turns an uploaded tar of a built directory into a stored,
// verified release and a new version: extract safely to a staging
// directory, pack the canonical artifact, store it create-only under its
// digest, then commit the version. A version becomes visible only after its
// bytes are stored and verified; a failure at any step leaves no version
// and no release row. A blob already stored when a later step fails stays
// behind, unreferenced: the publish's GC lease keeps it until the publish
// returns, then GC collects it as an orphan blob.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/semaphore"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// Store is what a Publisher needs of the metadata store: records, and
// leases on the releases it is storing.
type Store interface {
	meta.Store
	meta.Leases
	meta.ContentIndex // where stored releases hold each content (incremental publishes)
}

// Publisher publishes static releases.
type Publisher struct {
	Meta     Store
	Blobs    blob.Store
	StageDir string // scratch space on local disk, emptied at start
	Limits   release.Limits
	Log      *slog.Logger
	// MaxPacks bounds the publishes that pack and store their release at
	// once (0: DefaultMaxPacks). A pack already keeps every core busy and
	// holds up to ~130 MB, so further publishes extract their upload, then
	// wait their turn (in order, as long as their client waits).
	MaxPacks int
	// Metrics, if set, counts publishes (see Publish and Observe).
	Metrics *metrics.Metrics
	// PackTimeout bounds the packing of one release (0:
	// DefaultPackTimeout). A pack stalled for any reason is cancelled
	// then, its turn freed, and the publish answers 504.
	PackTimeout time.Duration

	tocs      tocCache // TOCs of releases read or stored last
	slotsOnce sync.Once
	slots     *semaphore.Weighted
	waiting   atomic.Int64                                                                           // publishes waiting for a turn
	packing   atomic.Int64                                                                           // publishes in a turn
	packDir   func(context.Context, string, io.Writer, release.PackOptions) (*release.Result, error) // tests
}

// Observe counts publishes in m (Metrics) and reports the publishes
// waiting for a turn and in one (gauges cairn_publish_waiting and
// cairn_publish_packing). Call it once, before the first publish.
func (p *Publisher) Observe(m *metrics.Metrics) {
	p.Metrics = m
	m.Gauge("cairn_publish_waiting", func() float64 { return float64(p.waiting.Load()) })
	m.Gauge("cairn_publish_packing", func() float64 { return float64(p.packing.Load()) })
}

// DefaultMaxPacks is MaxPacks when unset.
const DefaultMaxPacks = 2

// DefaultPackTimeout is PackTimeout when unset: a pack of the largest
// upload (--max-bytes, 10 GiB by default) takes minutes on two cores.
const DefaultPackTimeout = 15 * time.Minute

// slot waits for a turn to pack and store; the caller calls the returned
// function when its release is stored (or not).
func (p *Publisher) slot(ctx context.Context) (func(), error) {
	p.slotsOnce.Do(func() {
		n := p.MaxPacks
		if n <= 0 {
			n = DefaultMaxPacks
		}
		p.slots = semaphore.NewWeighted(int64(n))
	})
	p.waiting.Add(1)
	err := p.slots.Acquire(ctx, 1)
	p.waiting.Add(-1)
	if err != nil {
		return nil, err
	}
	p.packing.Add(1)
	return func() { p.packing.Add(-1); p.slots.Release(1) }, nil
}

// Options of one publish.
type Options struct {
	Entrypoint   string // "" means index.html
	Activate     bool
	Actor        string
	SourceSHA256 string // "" means the sha256 of the uploaded body
	// Create: dep is not stored yet; it is created in the same transaction
	// as the version (meta.NewVersion.NewDeployment), and filled in.
	Create bool
	// ExpectSHA256, if set, is the sha256 the release must come out with
	// (the upload is a `cairn pack` artifact): any other answers 422 and
	// stores nothing.
	ExpectSHA256 string
	// Runtime of a rootfs version (ParseRuntime); must be nil for static.
	Runtime *meta.Runtime
	// SourceSnapshot: SourceSHA256 names a stored source snapshot (the
	// caller checked it). Build: the platform build that made the release.
	SourceSnapshot bool
	Build          *meta.VersionBuild
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// maxTrailing bounds the bytes accepted after the tar end-of-archive marker
// (tar pads to its record size).
const maxTrailing = 1 << 20

// Publish reads the whole body, and returns the new version. It counts
// publishes by result and their durations from the first byte read to the
// version committed:
//
//	cairn_publish_total{result="ok|rejected|cancelled|error"} (rejected:
//	bad input, a 4xx; cancelled: the client went away)
//	cairn_publish_duration_seconds (histogram, successful publishes)
//	cairn_publish_bytes_total (uploaded bytes), cairn_publish_waiting and
//	cairn_publish_packing (gauges: publishes waiting for a turn, in one)
func (p *Publisher) Publish(ctx context.Context, dep *meta.Deployment, body io.Reader, o Options) (v *meta.Version, err error) {
	start := time.Now()
	counted := &countReader{r: body}
	body = counted
	defer func() {
		p.Metrics.Add("cairn_publish_bytes_total", counted.n)
		switch {
		case err == nil:
			p.Metrics.Inc(`cairn_publish_total{result="ok"}`)
			p.Metrics.Since("cairn_publish_duration_seconds", start)
		case errors.Is(err, context.Canceled) || ctx.Err() != nil:
			// The client went away: while waiting, or mid-upload (which
			// the tar reader sees as a truncated archive).
			p.Metrics.Inc(`cairn_publish_total{result="cancelled"}`)
		case Rejected(err):
			p.Metrics.Inc(`cairn_publish_total{result="rejected"}`)
		default:
			p.Metrics.Inc(`cairn_publish_total{result="error"}`)
		}
	}()
	if dep.Kind == meta.KindRootfs {
		return p.publishRootfs(ctx, dep, body, o)
	}
	if dep.Kind != meta.KindStatic {
		return nil, refuse(ErrWrongKind, "deployment %q has kind %q; tar uploads make static or rootfs releases", dep.Name, dep.Kind)
	}
	if o.Runtime != nil {
		return nil, refuse(ErrBadRequest, "deployment %q is static: it has no runtime settings", dep.Name)
	}
	if o.Entrypoint == "" {
		o.Entrypoint = "index.html"
	} else if err := release.CheckPath(o.Entrypoint); err != nil {
		return nil, refuse(ErrBadRequest, "entrypoint: %s", err)
	}
	stage, err := os.MkdirTemp(p.StageDir, "upload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	tree := filepath.Join(stage, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	src := sha256.New()
	in := io.TeeReader(body, src)
	if err := release.Extract(ctx, in, tree, p.Limits); err != nil {
		return nil, err
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(in, maxTrailing+1)); err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", release.ErrInvalid, err)
	} else if n > maxTrailing {
		return nil, fmt.Errorf("%w: data after the end of the archive", release.ErrInvalid)
	}
	return p.publishTree(ctx, dep, tree, stage, o, src.Sum(nil))
}

// siteOptions are the settings of dep that decide which site rules a
// publish accepts: rewrites to external URLs need proxy_rewrites.
func siteOptions(dep *meta.Deployment) siterules.Options {
	return siterules.Options{Proxy: dep.ProxyRewrites}
}

// publishTree packs the static tree in stage/tree, stores its release and
// creates the version; source is the digest of what the client sent, for
// o.SourceSHA256 when unset.
func (p *Publisher) publishTree(ctx context.Context, dep *meta.Deployment, tree, stage string, o Options, source []byte) (v *meta.Version, err error) {
	if err := siterules.CheckDir(tree, siteOptions(dep)); err != nil {
		return nil, err // a refused _redirects or _headers line: 400 naming it
	}
	if o.SourceSHA256 == "" {
		o.SourceSHA256 = hex.EncodeToString(source)
	}
	if o.Entrypoint != "index.html" {
		if fi, err := os.Lstat(filepath.Join(tree, filepath.FromSlash(o.Entrypoint))); err != nil || fi.IsDir() {
			return nil, refuse(ErrBadRequest, "entrypoint %q is not a file of the upload", o.Entrypoint)
		}
	}
	res, drop, err := p.pack(ctx, tree, stage)
	if err != nil {
		return nil, err
	}
	defer drop() // the lease holds the release until the version is committed
	return p.commit(ctx, dep, res, o, true)
}

// commit creates the version of a stored static release res (held by the
// caller's lease) and, if index, indexes its contents.
func (p *Publisher) commit(ctx context.Context, dep *meta.Deployment, res *release.Result, o Options, index bool) (v *meta.Version, err error) {
	if o.ExpectSHA256 != "" && res.SHA256 != o.ExpectSHA256 {
		return nil, refuse(ErrReleaseMismatch,
			"the upload packs to release %s, not %s: it is not a cairn pack artifact of this format version", res.SHA256, o.ExpectSHA256)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, res.SHA256)
	uri := blob.URIOf(p.Blobs, d)
	m := res.TOC.Manifest(o.Entrypoint)
	nv := meta.NewVersion{
		DeploymentID: dep.ID,
		SourceSHA256: o.SourceSHA256,
		Release: meta.Release{SHA256: res.SHA256, Kind: meta.KindStatic, SizeBytes: res.Size,
			URI: uri, TreeSHA256: res.TOC.TreeSHA256},
		Manifest:       meta.Manifest{Files: m.Files, TotalBytes: m.TotalBytes, Entrypoint: m.Entrypoint},
		Activate:       o.Activate,
		Actor:          o.Actor,
		Warnings:       warnings(res.TOC, m.Entrypoint),
		SourceSnapshot: o.SourceSnapshot,
		Build:          o.Build,
	}
	if o.Create {
		nv.NewDeployment = dep
	}
	if v, err = p.Meta.CreateVersion(ctx, nv); err != nil {
		return nil, err
	}
	if index {
		p.indexContents(ctx, res.SHA256, res.TOC)
		p.tocs.put(res.SHA256, res.Size, res.TOC) // the deployment's next publish reads it
	}
	return v, nil
}

// indexContents records where the release holds each file's content, for
// incremental publishes (meta.ContentIndex), while the publish's lease
// still holds the release. A failure costs only reuse: it is logged.
func (p *Publisher) indexContents(ctx context.Context, rel string, toc *release.TOC) {
	if err := p.Meta.IndexContents(ctx, rel, Contents(rel, toc)); err != nil && p.Log != nil {
		p.Log.Warn("index release contents", "release", rel, "err", err)
	}
}

// Contents lists where release rel (of TOC toc) holds the content of each
// of its non-empty files, once per content.
func Contents(rel string, toc *release.TOC) []meta.Content {
	seen := map[string]bool{}
	var cs []meta.Content
	for _, e := range toc.Entries {
		if e.Type != release.TypeFile || e.Size == 0 || seen[e.SHA256] {
			continue
		}
		seen[e.SHA256] = true
		cs = append(cs, meta.Content{SHA256: e.SHA256, ReleaseSHA256: rel, Size: e.Size,
			FrameOffset: e.FrameOffset, FrameLength: e.FrameLength, InFrame: e.InFrame, Shared: e.Shared})
	}
	return cs
}

// pack writes the canonical artifact to a staging file and stores it in the
// blob store, which verifies its digest before it becomes visible, in one of
// MaxPacks turns. Before storing, it takes a GC lease on the digest
// (lease.Hold: waits out a deletion in progress, so the bytes are stored after
// it); the caller drops the lease once the version is committed.
func (p *Publisher) pack(ctx context.Context, tree, stage string) (*release.Result, func(), error) {
	packDir := release.PackDir
	if p.packDir != nil {
		packDir = p.packDir
	}
	return p.packWith(ctx, stage, func(ctx context.Context, w io.Writer) (*release.Result, error) {
		return packDir(ctx, tree, w, release.PackOptions{Limits: p.Limits})
	})
}

// packWith is pack with any packer writing the artifact to w.
func (p *Publisher) packWith(ctx context.Context, stage string, pack func(context.Context, io.Writer) (*release.Result, error)) (*release.Result, func(), error) {
	res, done, err := p.packStaged(ctx, stage, pack)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	drop, err := p.storeStaged(ctx, stage, res)
	if err != nil {
		return nil, nil, err
	}
	return res, drop, nil
}

// packStaged packs into stage/artifact.tar.zst in one of MaxPacks turns,
// which the caller ends with done (after storing it, if it does).
func (p *Publisher) packStaged(ctx context.Context, stage string, pack func(context.Context, io.Writer) (*release.Result, error)) (res *release.Result, done func(), err error) {
	free, err := p.slot(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			free()
		}
	}()
	f, err := os.Create(filepath.Join(stage, "artifact.tar.zst"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	timeout := p.PackTimeout
	if timeout <= 0 {
		timeout = DefaultPackTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	res, err = pack(pctx, f)
	cancel()
	if err != nil {
		// pctx was cancelled above: only its deadline makes this a timeout.
		if ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("pack took more than %v: %w", timeout, context.DeadlineExceeded)
		}
		return nil, nil, err
	}
	return res, free, nil
}

// storeStaged stores stage/artifact.tar.zst, packed as res, in the blob
// store, which verifies its digest before it becomes visible. Before
// storing, it takes a GC lease on the digest (lease.Hold: waits out a
// deletion in progress, so the bytes are stored after it); the caller
// drops the lease once the record is committed.
func (p *Publisher) storeStaged(ctx context.Context, stage string, res *release.Result) (func(), error) {
	path := filepath.Join(stage, "artifact.tar.zst")
	drop, err := lease.Hold(ctx, p.Meta, res.SHA256)
	if err != nil {
		return nil, fmt.Errorf("lease release %s: %w", res.SHA256, err)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, res.SHA256)
	// A store on this file system takes the staged file as it is: the
	// packer hashed its bytes as it wrote them (res.SHA256), so it is
	// neither copied nor hashed again. Its staging name goes at once, so
	// that nothing writes the blob's bytes through it.
	if fl, ok := p.Blobs.(blob.FileLinker); ok {
		err := fl.LinkFile(ctx, d, res.Size, path)
		if err == nil {
			os.Remove(path)
			return drop, nil
		}
		if !errors.Is(err, blob.ErrNotLinkable) {
			drop()
			return nil, fmt.Errorf("store release %s: %w", res.SHA256, err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		drop()
		return nil, err
	}
	defer f.Close()
	if err := p.Blobs.Put(ctx, d, res.Size, f); err != nil {
		drop()
		return nil, fmt.Errorf("store release %s: %w", res.SHA256, err)
	}
	return drop, nil
}

// warnings are what a publish that succeeds tells its user: a tree without
// its entrypoint serves / as 404 (monaco-editor's npm tree has no
// index.html).
func warnings(toc *release.TOC, entrypoint string) []string {
	if e, ok := toc.Lookup(entrypoint); ok && e.Type == release.TypeFile {
		return nil
	}
	return []string{fmt.Sprintf("no %s in the tree: / answers 404 (add one, or publish with --entrypoint FILE)", entrypoint)}
}
