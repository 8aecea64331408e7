package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/opencontainers/go-digest"
)

// getBlob answers GET and HEAD /v2/<name>/blobs/<digest> for a blob the
// repository may serve, with a single Range (206) when asked.
func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	b, err := r.reg.GetOCIBlob(ctx, rt.name, d.String())
	if errors.Is(err, meta.ErrNotFound) {
		return public(errBlobUnknown, "%s in %s", d, rt.name)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	off, n, partial, err := parseRange(req.Header.Get("Range"), b.Size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
		return err
	}
	if req.Method == http.MethodHead {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc, err := r.blobs.Open(ctx, d, off, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, b.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent; all that is left is to cut the response short.
		r.log.Debug("registry: sending a blob", "digest", d, "err", err)
	}
	return nil
}

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>: the repository may no
// longer serve the blob (202). The bytes stay in the blob store for other
// repositories and releases; the garbage collector owns their removal.
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	err = r.reg.UnlinkOCIBlob(req.Context(), rt.name, d.String())
	if errors.Is(err, meta.ErrNotFound) {
		return public(errBlobUnknown, "%s in %s", d, rt.name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// blobCreated answers 201 for a stored blob.
func blobCreated(w http.ResponseWriter, repo string, d digest.Digest) error {
	h := w.Header()
	h.Set("Location", fmt.Sprintf("/v2/%s/blobs/%s", repo, d))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}
