package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/opencontainers/go-digest"
)

// startUpload answers POST /v2/<name>/blobs/uploads/:
//   - ?mount=<digest>[&from=<repo>]: links a blob the caller can read in
//     from (or, without from, in any repository) and answers 201; when that
//     is not possible it falls back to opening a session (202), as the spec asks;
//   - ?digest=<digest>: a monolithic upload of the body, verified, 201;
//   - otherwise: opens an upload session, 202 with its Location.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	if _, err := r.pushTarget(ctx, rt.name); err != nil {
		return err
	}
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, ok, err := r.mount(req, rt.name, m, q.Get("from"))
		if err != nil {
			return err
		}
		if ok {
			return blobCreated(w, rt.name, d)
		}
	} else if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		if err := r.putBlob(ctx, req, rt.name, d); err != nil {
			return err
		}
		return blobCreated(w, rt.name, d)
	}
	ss, err := r.createSession(ctx, rt.name)
	if err != nil {
		return err
	}
	return uploadProgress(w, http.StatusAccepted, rt.name, ss)
}

// putBlob stores the request body as blob d (verified by the blob store,
// nothing stored on a mismatch) and links it to repo.
func (r *Registry) putBlob(ctx context.Context, req *http.Request, repo string, d digest.Digest) error {
	if req.ContentLength > r.cfg.MaxBlobBytes {
		return public(errBlobTooLarge, "%d bytes; the limit is %d", req.ContentLength, r.cfg.MaxBlobBytes)
	}
	httplimit.Upload(req)
	body := newLimitReader(req.Body, r.cfg.MaxBlobBytes)
	drop, err := r.hold(ctx, d)
	if err != nil {
		return err
	}
	defer drop()
	if err := r.blobs.Put(ctx, d, req.ContentLength, body); err != nil {
		return bodyErr(err)
	}
	return r.reg.LinkOCIBlob(ctx, repo, meta.OCIBlob{Digest: d.String(), Size: body.read()})
}

// uploadStatus answers GET on an upload: 204 with Location and Range.
func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	ss, err := r.session(req.Context(), rt)
	if err != nil {
		return err
	}
	return uploadProgress(w, http.StatusNoContent, rt.name, ss)
}

// patchUpload appends a chunk: with Content-Range "<start>-<end>" the chunk
// must start where the upload ends (else 416, with the current Range, and
// nothing appended); without it the whole body is appended (streamed upload).
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ss, err := r.session(req.Context(), rt)
	if err != nil {
		return err
	}
	if err := r.appendChunk(w, req, rt, ss); err != nil {
		return err
	}
	return uploadProgress(w, http.StatusAccepted, rt.name, ss)
}

// appendChunk appends the request body to ss as a part, checking
// Content-Range and the size limit. On error the session is as it was, and
// the response headers carry the session's Location and (current) Range.
func (r *Registry) appendChunk(w http.ResponseWriter, req *http.Request, rt route, ss *meta.Upload) error {
	setProgress(w, rt.name, ss)
	want := int64(-1)
	if h := req.Header.Get("Content-Range"); h != "" {
		start, end, err := parseContentRange(h)
		if err != nil {
			return err
		}
		if start != ss.Size {
			return public(errRangeInvalid, "chunk starts at %d; the upload has %d bytes", start, ss.Size)
		}
		if end-start >= r.cfg.MaxBlobBytes-ss.Size { // end-start+1 might overflow
			return public(errBlobTooLarge, "the blob would exceed the limit of %d bytes", r.cfg.MaxBlobBytes)
		}
		want = end - start + 1
		if req.ContentLength >= 0 && req.ContentLength != want {
			return public(errSizeInvalid, "Content-Length %d does not match Content-Range %q", req.ContentLength, h)
		}
	}
	left := r.cfg.MaxBlobBytes - ss.Size
	if req.ContentLength > left {
		return public(errBlobTooLarge, "the blob would exceed the limit of %d bytes", r.cfg.MaxBlobBytes)
	}
	httplimit.Upload(req)
	err := r.addPart(req.Context(), ss, req.Body, left, want)
	setProgress(w, rt.name, ss)
	return err
}

// finishUpload answers PUT ?digest=: appends the body (a last chunk, checked
// like a PATCH), verifies the whole upload against the digest while storing
// it (a mismatch stores nothing and keeps the session), links the blob and
// ends the session: 201 with the blob's Location. A session of one part with
// that digest is stored already: it is only linked.
func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(req.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	ctx := req.Context()
	ss, err := r.session(ctx, rt)
	if err != nil {
		return err
	}
	if err := r.appendChunk(w, req, rt, ss); err != nil {
		return err
	}
	// appendChunk renewed the parts' leases: they outlast the copy.
	if len(ss.Parts) == 1 && ss.Parts[0].Digest == d.String() {
		// Leased since it was stored; gone only if someone deleted it.
		if _, err := r.blobs.Stat(ctx, d); errors.Is(err, blob.ErrNotFound) {
			return r.partLost(ctx, ss, d.String())
		} else if err != nil {
			return fmt.Errorf("upload %s: part %s: %v", ss.ID, d, err)
		}
	} else {
		drop, err := r.hold(ctx, d)
		if err != nil {
			return err
		}
		defer drop()
		parts := &partsReader{ctx: ctx, blobs: r.blobs, parts: ss.Parts}
		defer parts.Close()
		if err := r.blobs.Put(ctx, d, ss.Size, parts); err != nil {
			if parts.lost != "" {
				return r.partLost(ctx, ss, parts.lost)
			}
			return err
		}
	}
	if err := r.reg.LinkOCIBlob(ctx, rt.name, meta.OCIBlob{Digest: d.String(), Size: ss.Size}); err != nil {
		return err
	}
	if err := r.endSession(ctx, ss); err != nil {
		r.log.Warn("registry: removing a finished upload", "upload", ss.ID, "err", err)
	}
	for _, k := range []string{"Range", "Docker-Upload-UUID"} {
		w.Header().Del(k)
	}
	return blobCreated(w, rt.name, d)
}

// cancelUpload answers DELETE on an upload: 204.
func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ss, err := r.session(req.Context(), rt)
	if err != nil {
		return err
	}
	if err := r.endSession(req.Context(), ss); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setProgress sets the Location and Range headers of a session. Range is
// "0-<last byte>", and "0-0" for an empty upload as other registries answer.
func setProgress(w http.ResponseWriter, repo string, ss *meta.Upload) {
	h := w.Header()
	h.Set("Location", fmt.Sprintf("/v2/%s/blobs/uploads/%s", repo, ss.ID))
	h.Set("Range", "0-"+strconv.FormatInt(max(ss.Size-1, 0), 10))
	h.Set("Docker-Upload-UUID", ss.ID)
}

func uploadProgress(w http.ResponseWriter, status int, repo string, ss *meta.Upload) error {
	setProgress(w, repo, ss)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// bodyErr turns a request body that ended before its Content-Length, or
// stalled past the body timeout, into the client's error
// (BLOB_UPLOAD_INVALID) rather than the server's.
func bodyErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return public(errUploadInvalid, "the request body ended early")
	}
	if errors.Is(err, httplimit.ErrBodyTimeout) {
		return public(errUploadInvalid, "the request body stalled: no bytes arrived within the body timeout")
	}
	return err
}
