package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
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
	// Reused and Size are set by Assemble: the compressed bytes of the
	// release copied from stored frames, and its size.
	Reused, Size int64
	stage        string
	sizes        map[string]int64 // content sha256 → size, from the manifest
	have         map[string]meta.Content
}

// StartIncremental checks manifest m and answers the contents no stored
// release holds (meta.ContentIndex; a store without it lacks them all).
func (p *Publisher) StartIncremental(ctx context.Context, m *Manifest) (*Incremental, error) {
	return p.StartIncrementalTo(ctx, nil, m)
}

// StartIncrementalTo is StartIncremental for a publish to dep (nil: none):
// the contents dep's active release holds are found in its TOC when the
// publisher has it in memory (it stored or read that release last), and
// only the others in the content index, whose lookup costs a row per
// content and release holding it.
func (p *Publisher) StartIncrementalTo(ctx context.Context, dep *meta.Deployment, m *Manifest) (*Incremental, error) {
	inc := &Incremental{Manifest: m, sizes: map[string]int64{}, have: map[string]meta.Content{}}
	for _, e := range m.Entries {
		if e.Type == release.TypeFile && e.Size > 0 {
			inc.sizes[e.SHA256] = e.Size
		}
	}
	for _, c := range p.activeContents(ctx, dep) {
		if size, ok := inc.sizes[c.SHA256]; ok && size == c.Size {
			inc.have[c.SHA256] = c
		}
	}
	lookup := m.Missing(func(sha string) bool { _, ok := inc.have[sha]; return ok })
	found, err := p.Meta.FindContents(ctx, lookup)
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

// activeContents lists where dep's active release holds each content, if
// its TOC is in the publisher's cache; else nothing (the content index
// answers then). Assemble reads them under a lease, as it reads those the
// index names.
func (p *Publisher) activeContents(ctx context.Context, dep *meta.Deployment) []meta.Content {
	if dep == nil || dep.ActiveVersionID == nil {
		return nil
	}
	v, err := p.Meta.GetVersion(ctx, *dep.ActiveVersionID)
	if err != nil || v.ArtifactSHA256 == "" {
		return nil
	}
	t := p.tocs.get(v.ArtifactSHA256)
	if t == nil {
		return nil
	}
	return t.contents()
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

// Assemble packs the release of the manifest with release.Assemble: a
// frame whose input a stored release holds (found by its key in the TOCs of
// the deployment's active release and the releases holding the most of the
// tree's contents) is copied compressed, with ranged reads; the others are
// compressed from the uploaded parts and from contents read out of stored
// releases (checked against their sha256). Then it stores the release and
// creates the version, as Publish does for a tar upload. A content neither
// uploaded nor stored answers 409 contents-missing. The release is
// byte-identical to a cold `cairn pack` of the tree.
func (p *Publisher) Assemble(ctx context.Context, dep *meta.Deployment, inc *Incremental, o Options) (*meta.Version, error) {
	if dep.Kind != meta.KindStatic {
		return nil, refuse(ErrWrongKind, "deployment %q has kind %q; incremental publishes make static releases", dep.Name, dep.Kind)
	}
	if o.Entrypoint == "" {
		o.Entrypoint = "index.html"
	} else if err := release.CheckPath(o.Entrypoint); err != nil {
		return nil, refuse(ErrBadRequest, "entrypoint: %s", err)
	}
	entries := inc.Manifest.treeEntries()
	if err := inc.checkContents(entries); err != nil {
		return nil, err
	}
	if o.Entrypoint != "index.html" {
		i := sort.Search(len(entries), func(i int) bool { return entries[i].Path >= o.Entrypoint })
		if i == len(entries) || entries[i].Path != o.Entrypoint || entries[i].Type == release.TypeDir {
			return nil, refuse(ErrBadRequest, "entrypoint %q is not a file of the upload", o.Entrypoint)
		}
	}
	src := newStoredSource(p, inc)
	defer src.close()
	if err := src.checkSiteRules(ctx, entries, siteOptions(dep)); err != nil {
		return nil, err
	}
	if err := src.loadActive(ctx, dep); err != nil {
		return nil, err
	}
	if o.SourceSHA256 == "" {
		m, err := json.Marshal(inc.Manifest)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(m)
		o.SourceSHA256 = hex.EncodeToString(sum[:])
	}
	// The tree of the active release: its release, packed by this format
	// version, is the one a pack would make (held by src's lease, its
	// contents indexed already).
	if a := src.active; a != nil && a.TOC.TreeSHA256 == release.TreeDigest(entries) {
		inc.Reused, inc.Size = a.Size, a.Size
		return p.commit(ctx, dep, a, o, false)
	}
	if err := src.loadFrames(ctx); err != nil {
		return nil, err
	}
	res, drop, err := p.packWith(ctx, inc.stage, func(ctx context.Context, w io.Writer) (*release.Result, error) {
		return release.Assemble(ctx, entries, w, src, release.PackOptions{Limits: p.Limits})
	})
	if err != nil {
		return nil, err
	}
	defer drop() // the lease holds the release until the version is committed
	p.Metrics.Add("cairn_publish_reused_bytes_total", res.Reused)
	p.Metrics.Add("cairn_publish_assembled_bytes_total", res.Size)
	inc.Reused, inc.Size = res.Reused, res.Size
	return p.commit(ctx, dep, res, o, true)
}

// checkContents refuses (409) a tree with a content neither uploaded nor
// stored.
func (inc *Incremental) checkContents(entries []release.Entry) error {
	for _, e := range entries {
		if e.Type != release.TypeFile || e.Size == 0 {
			continue
		}
		if _, ok := inc.have[e.SHA256]; ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(inc.stage, "parts", e.SHA256)); err != nil {
			return refuse(ErrContentsMissing, "content %s of %q was not uploaded", e.SHA256, e.Path)
		}
	}
	return nil
}

// AssembleSource is Assemble for a source snapshot (docs/design.md,
// "Sources, builds and rebuilds"): the manifest's tree, packed with the
// frames stored releases hold, must come out as expect; it is stored and
// recorded with record (meta.Builds's PutSourceRelease) while a lease
// holds it, and its contents indexed for later snapshots and publishes.
// No entrypoint or site rules: a snapshot is not served.
func (p *Publisher) AssembleSource(ctx context.Context, inc *Incremental, expect string,
	record func(context.Context, meta.Release) (*meta.Release, error)) (*meta.Release, error) {
	entries := inc.Manifest.treeEntries()
	if err := inc.checkContents(entries); err != nil {
		return nil, err
	}
	src := newStoredSource(p, inc)
	defer src.close()
	if err := src.loadFrames(ctx); err != nil {
		return nil, err
	}
	res, drop, err := p.packWith(ctx, inc.stage, func(ctx context.Context, w io.Writer) (*release.Result, error) {
		return release.Assemble(ctx, entries, w, src, release.PackOptions{Limits: p.Limits})
	})
	if err != nil {
		return nil, err
	}
	defer drop()
	p.Metrics.Add("cairn_publish_reused_bytes_total", res.Reused)
	p.Metrics.Add("cairn_publish_assembled_bytes_total", res.Size)
	inc.Reused, inc.Size = res.Reused, res.Size
	if res.SHA256 != expect {
		return nil, refuse(ErrReleaseMismatch, "the snapshot's tree packs to %s, not %s", res.SHA256, expect)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, res.SHA256)
	rel, err := record(ctx, meta.Release{SHA256: res.SHA256, Kind: meta.KindSource, SizeBytes: res.Size,
		URI: blob.URIOf(p.Blobs, d), TreeSHA256: res.TOC.TreeSHA256})
	if err != nil {
		return nil, err
	}
	p.indexContents(ctx, res.SHA256, res.TOC)
	return rel, nil
}

// treeEntries lists the entries of the manifest's tree, with the
// directories its paths imply, sorted by path (as packing the tree it
// describes on disk would list them).
func (m *Manifest) treeEntries() []release.Entry {
	have := map[string]bool{}
	var es []release.Entry
	for _, e := range m.Entries {
		have[e.Path] = true
		es = append(es, release.Entry{Path: e.Path, Type: e.Type, Mode: e.Mode, Size: e.Size, SHA256: e.SHA256, Link: e.Link})
	}
	for _, e := range m.Entries {
		for dir := e.Path; ; {
			k := strings.LastIndexByte(dir, '/')
			if k < 0 {
				break
			}
			dir = dir[:k]
			if have[dir] {
				break
			}
			have[dir] = true
			es = append(es, release.Entry{Path: dir, Type: release.TypeDir, Mode: 0o755})
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	return es
}
