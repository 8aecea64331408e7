package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/opencontainers/go-digest"
)

// resolve finds the manifest a reference names in repo.
func (r *Registry) resolve(ctx context.Context, repo string, ref reference) (*meta.OCIManifest, error) {
	d := ref.digest.String()
	if ref.tag != "" {
		var err error
		if d, err = r.reg.ResolveOCITag(ctx, repo, ref.tag); err != nil {
			if errors.Is(err, meta.ErrNotFound) {
				return nil, public(errManifestUnknown, "tag %q in %s", ref.tag, repo)
			}
			return nil, err
		}
	}
	m, err := r.reg.GetOCIManifest(ctx, repo, d)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, public(errManifestUnknown, "%s in %s", d, repo)
	}
	return m, err
}

// getManifest answers GET and HEAD /v2/<name>/manifests/<reference> with
// the stored bytes and media type.
func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	ref, err := parseReference(rt.ref, errManifestUnknown)
	if err != nil {
		return err
	}
	m, err := r.resolve(ctx, rt.name, ref)
	if err != nil {
		return err
	}
	d := digest.Digest(m.Digest)
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest)
	h.Set("ETag", `"`+m.Digest+`"`)
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc, err := r.blobs.Open(ctx, d, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		r.log.Debug("registry: sending a manifest", "digest", d, "err", err)
	}
	return nil
}

// putManifest answers PUT /v2/<name>/manifests/<reference>. The body is read
// up to MaxManifestBytes (more: 413), hashed (sha256 for a tag, the
// reference's algorithm for a digest, which must match), validated, checked
// against the repository's blobs (image manifests), stored in the blob store
// and recorded with its tag. Further tags may come as ?tag= parameters.
// A tag pushed to the deployment's own repository publishes a version.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	ref, err := parseReference(rt.ref, errManifestInvalid)
	if err != nil {
		return err
	}
	tags := req.URL.Query()["tag"]
	for _, t := range tags {
		if !tagRE.MatchString(t) {
			return public(errManifestInvalid, "invalid tag %.200q", t)
		}
	}
	if ref.tag != "" {
		tags = append([]string{ref.tag}, tags...)
	}
	body, err := r.readManifest(req)
	if err != nil {
		return err
	}
	d := digest.Canonical.FromBytes(body)
	if ref.digest != "" {
		if d = ref.digest.Algorithm().FromBytes(body); d != ref.digest {
			return public(errDigestInvalid, "the manifest's %s digest is %s, not %s", d.Algorithm(), d, ref.digest)
		}
	}
	m, err := parseManifest(req.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	dep, err := r.pushTarget(ctx, rt.name)
	if err != nil {
		return err
	}
	drop, err := r.hold(ctx, append(m.references(), d)...)
	if err != nil {
		return err
	}
	defer drop()
	if err := r.checkReferences(ctx, rt.name, m); err != nil {
		return err
	}
	if err := r.blobs.Put(ctx, d, int64(len(body)), bytes.NewReader(body)); err != nil {
		return err
	}
	rec := &meta.OCIManifest{
		Repository: rt.name, Digest: d.String(), MediaType: m.MediaType, Size: int64(len(body)),
		Subject: m.subject(), ArtifactType: m.referrerType(), Annotations: m.Annotations,
	}
	for i := 0; i == 0 || i < len(tags); i++ {
		tag := ""
		if i < len(tags) {
			tag = tags[i]
		}
		if err := r.reg.PutOCIManifest(ctx, rec, tag); err != nil {
			return err
		}
	}
	if len(tags) > 0 && rt.name == dep.Name {
		if err := r.publishPush(ctx, dep, d, m, tags); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Location", fmt.Sprintf("/v2/%s/manifests/%s", rt.name, d))
	h.Set("Docker-Content-Digest", d.String())
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest)
	}
	if len(tags) > 0 && ref.digest != "" {
		h.Set("OCI-Tag", strings.Join(tags, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readManifest reads a manifest body of at most MaxManifestBytes.
func (r *Registry) readManifest(req *http.Request) ([]byte, error) {
	limit := r.cfg.MaxManifestBytes
	tooLarge := public(errManifestTooLarge, "the manifest exceeds the limit of %d bytes", limit)
	if req.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, httplimit.ErrBodyTimeout) {
		return nil, public(errManifestInvalid, "the request body ended early or stalled")
	}
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// checkReferences checks that the repository may serve the config and every
// layer of an image manifest (layers with urls, non-distributable ones, are
// fetched elsewhere), with the sizes the manifest claims, and that every
// manifest an index lists is in the repository, with its size: as CNCF
// distribution does by default, an index whose child is missing is refused
// with MANIFEST_BLOB_UNKNOWN, so a pull by the index's tag never finds a
// platform missing. Push the children first (every client does). A subject
// may not exist yet (the spec allows it).
func (r *Registry) checkReferences(ctx context.Context, repo string, m *manifest) error {
	if isIndex(m.MediaType) {
		for _, desc := range *m.Manifests {
			c, err := r.reg.GetOCIManifest(ctx, repo, desc.Digest)
			if errors.Is(err, meta.ErrNotFound) {
				return public(errManifestBlobUnknown, "the index lists manifest %s, which is not in %s; push it first", desc.Digest, repo)
			}
			if err != nil {
				return err
			}
			if c.Size != desc.size() {
				return public(errManifestInvalid, "manifest %s has %d bytes, the index says %d", desc.Digest, c.Size, desc.size())
			}
		}
		return nil
	}
	descs := append([]descriptor{*m.Config}, m.Layers...)
	for _, desc := range descs {
		if len(desc.URLs) > 0 {
			continue
		}
		b, err := r.reg.GetOCIBlob(ctx, repo, desc.Digest)
		if errors.Is(err, meta.ErrNotFound) {
			return public(errManifestBlobUnknown, "%s is not in %s", desc.Digest, repo)
		}
		if err != nil {
			return err
		}
		if b.Size != desc.size() {
			return public(errManifestInvalid, "%s has %d bytes, the manifest says %d", desc.Digest, b.Size, desc.size())
		}
	}
	return nil
}

// deleteManifest answers DELETE /v2/<name>/manifests/<reference>: a tag
// removes the tag, a digest the manifest and its tags (202). The manifest of
// a release in the deployment's own repository cannot be deleted (DENIED):
// versions point at it, and the garbage collector owns releases.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	ref, err := parseReference(rt.ref, errManifestUnknown)
	if err != nil {
		return err
	}
	if ref.tag != "" {
		err = r.reg.DeleteOCITag(ctx, rt.name, ref.tag)
	} else {
		if err := r.checkNotRelease(ctx, rt.name, ref.digest); err != nil {
			return err
		}
		err = r.reg.DeleteOCIManifest(ctx, rt.name, ref.digest.String())
	}
	if errors.Is(err, meta.ErrNotFound) {
		return public(errManifestUnknown, "%s in %s", rt.ref, rt.name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// checkNotRelease denies deleting a manifest that is an uncollected release,
// from the deployment's own repository.
func (r *Registry) checkNotRelease(ctx context.Context, repo string, d digest.Digest) error {
	if repo != deploymentName(repo) || d.Algorithm() != digest.SHA256 {
		return nil
	}
	rel, err := r.meta.GetRelease(ctx, d.Encoded())
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rel.CollectedAt == nil {
		return public(errDenied, "%s is the release of a version of %s; versions are collected, not deleted", d, repo)
	}
	return nil
}
