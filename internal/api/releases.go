package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/httprange"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

func (a *API) release(r *http.Request) (*meta.Release, error) {
	sha := r.PathValue("sha")
	if err := digest.SHA256.Validate(sha); err != nil {
		return nil, badRequest("%q is not a sha256 hex digest", sha)
	}
	rel, err := a.cfg.Meta.GetRelease(r.Context(), sha)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("release %s not found", sha)
	}
	return rel, err
}

func (a *API) getRelease(w http.ResponseWriter, r *http.Request) error {
	rel, err := a.release(r)
	if err != nil {
		return err
	}
	view := releaseView{Release: rel}
	if view.derivedView, err = a.derivedOf(r.Context(), rel.SHA256); err != nil {
		return err
	}
	if view.Replicas, err = a.cfg.Meta.ReplicaStatuses(r.Context(), "sha256:"+rel.SHA256); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, view)
}

// releaseView is a Release with the state of its copies in the regions
// other than the primary ("replicas", omitted when there are none).
type releaseView struct {
	*meta.Release
	Replicas map[string]meta.ReplicaStatus `json:"replicas,omitempty"`
	derivedView
}

// getArtifact streams the release bytes, with Range and conditional
// requests handled by http.ServeContent (Range read by httprange).
func (a *API) getArtifact(w http.ResponseWriter, r *http.Request) error {
	rel, err := a.release(r)
	if err != nil {
		return err
	}
	if rel.CollectedAt != nil {
		p := problem.New(http.StatusGone, "release-collected", "release "+rel.SHA256+" was garbage collected")
		p.Extra = map[string]any{"collected_at": rel.CollectedAt}
		return p
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, rel.SHA256)
	info, err := a.cfg.Blobs.Stat(r.Context(), d)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+rel.SHA256+`"`)
	ctype, ext := "application/zstd", ".tar.zst"
	if rel.Kind == meta.DerivedErofs {
		ctype, ext = "application/octet-stream", ".erofs"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rel.SHA256+ext+`"`)
	rs := &blobSeeker{ctx: r.Context(), s: a.cfg.Blobs, d: d, size: info.Size}
	defer rs.Close()
	http.ServeContent(w, httprange.Rewrite(r, info.Size, httprange.MaxRanges), "", rel.CreatedAt, rs)
	return nil
}

// blobSeeker is an io.ReadSeeker over a blob that opens a ranged read at
// the current offset on the first Read after a Seek.
type blobSeeker struct {
	ctx  context.Context
	s    blob.Store
	d    digest.Digest
	size int64
	off  int64
	rc   io.ReadCloser
}

func (b *blobSeeker) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if b.rc == nil {
		rc, err := b.s.Open(b.ctx, b.d, b.off, b.size-b.off)
		if err != nil {
			return 0, err
		}
		b.rc = rc
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	if err == io.EOF && b.off < b.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *blobSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += b.off
	case io.SeekEnd:
		off += b.size
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off != b.off {
		b.Close()
	}
	b.off = off
	return off, nil
}

func (b *blobSeeker) Close() error {
	if b.rc == nil {
		return nil
	}
	err := b.rc.Close()
	b.rc = nil
	return err
}
