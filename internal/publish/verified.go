package publish

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// Verified is an uploaded artifact (or tar) checked the way every upload
// is: extracted safely and packed again, staged on local disk until Close.
// Builds, rebuilds and restores decide from it whether to store it.
type Verified struct {
	Result *release.Result
	p      *Publisher
	stage  string
	done   func() // ends the packing turn
}

// Verify extracts body into a staging directory and packs the tree as a
// static release in one of MaxPacks turns, without storing it. The
// caller must Close the result.
func (p *Publisher) Verify(ctx context.Context, body io.Reader) (*Verified, error) {
	stage, err := os.MkdirTemp(p.StageDir, "verify-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	tree := filepath.Join(stage, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	if err := release.Extract(ctx, body, tree, p.Limits); err != nil {
		return nil, err
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(body, maxTrailing+1)); err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", release.ErrInvalid, err)
	} else if n > maxTrailing {
		return nil, fmt.Errorf("%w: data after the end of the archive", release.ErrInvalid)
	}
	res, done, err := p.packStaged(ctx, stage, func(ctx context.Context, w io.Writer) (*release.Result, error) {
		return release.PackDir(ctx, tree, w, release.PackOptions{Limits: p.Limits})
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return &Verified{Result: res, p: p, stage: stage, done: done}, nil
}

// Store stores the verified artifact under a GC lease on its sha256 and
// returns its URI; the caller drops the lease once the record is
// committed.
func (v *Verified) Store(ctx context.Context) (uri string, drop func(), err error) {
	drop, err = v.p.storeStaged(ctx, v.stage, v.Result)
	if err != nil {
		return "", nil, err
	}
	return blob.URIOf(v.p.Blobs, digest.NewDigestFromEncoded(digest.SHA256, v.Result.SHA256)), drop, nil
}

// Close ends the packing turn and removes the staging directory.
func (v *Verified) Close() {
	v.done()
	os.RemoveAll(v.stage)
}

// StoreSource stores an uploaded source snapshot that must pack to
// expect: verified, stored, then recorded with record (meta.Builds's
// PutSourceRelease) while the lease holds it.
func (p *Publisher) StoreSource(ctx context.Context, body io.Reader, expect string,
	record func(context.Context, meta.Release) (*meta.Release, error)) (*meta.Release, error) {
	v, err := p.Verify(ctx, body)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	if v.Result.SHA256 != expect {
		return nil, refuse(ErrReleaseMismatch,
			"the snapshot packs to %s, not %s: it is not a cairn pack artifact of this format version", v.Result.SHA256, expect)
	}
	uri, drop, err := v.Store(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	rel, err := record(ctx, meta.Release{SHA256: v.Result.SHA256, Kind: meta.KindSource, SizeBytes: v.Result.Size,
		URI: uri, TreeSHA256: v.Result.TOC.TreeSHA256})
	if err != nil {
		return nil, err
	}
	p.indexContents(ctx, rel.SHA256, v.Result.TOC) // later snapshots and publishes reuse its frames
	return rel, nil
}

// StoredTOC reads the TOC of the stored release sha of size bytes.
func (p *Publisher) StoredTOC(ctx context.Context, sha string, size int64) (*release.TOC, error) {
	d := digest.NewDigestFromEncoded(digest.SHA256, sha)
	return release.ReadTOC(ctx, release.RangeFunc(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return p.Blobs.Open(ctx, d, off, n)
	}), size)
}

// DiffTOCs lists, sorted, the paths whose entries differ between two
// trees (type, mode, size, content, link target) or that only one has.
func DiffTOCs(a, b *release.TOC) []string {
	type key struct {
		typ, sha, link string
		mode           uint32
		size           int64
	}
	index := func(t *release.TOC) map[string]key {
		m := make(map[string]key, len(t.Entries))
		for _, e := range t.Entries {
			m[e.Path] = key{e.Type, e.SHA256, e.Link, e.Mode, e.Size}
		}
		return m
	}
	ma, mb := index(a), index(b)
	var out []string
	for p, ka := range ma {
		if kb, ok := mb[p]; !ok || kb != ka {
			out = append(out, p)
		}
	}
	for p := range mb {
		if _, ok := ma[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
