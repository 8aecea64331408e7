package registry

import (
	"errors"
	"net/http"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/opencontainers/go-digest"
)

// mount links the blob named s into repo if the caller can read it in from
// (or, when from is empty, in any repository). ok is false when the blob
// cannot be mounted (unknown, unreadable, malformed names): the caller then
// opens a session instead.
func (r *Registry) mount(req *http.Request, repo, s, from string) (d digest.Digest, ok bool, err error) {
	ctx := req.Context()
	d, err = parseDigest(s)
	if err != nil {
		return "", false, nil
	}
	sources := []string{from}
	if from == "" {
		if sources, err = r.reg.OCIBlobRepositories(ctx, d.String()); err != nil {
			return "", false, err
		}
	} else if checkName(from) != nil {
		return "", false, nil
	}
	for _, src := range sources {
		if !r.canPull(req, src) {
			continue
		}
		b, err := r.reg.GetOCIBlob(ctx, src, d.String())
		if errors.Is(err, meta.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		drop, err := r.hold(ctx, d)
		if err != nil {
			return "", false, err
		}
		defer drop()
		if _, err := r.blobs.Stat(ctx, d); err != nil {
			return "", false, err
		}
		return d, true, r.reg.LinkOCIBlob(ctx, repo, *b)
	}
	return "", false, nil
}
