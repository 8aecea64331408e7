package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// Image opens the stored image that manifest d of repository repo names,
// as a go-containerregistry image read straight from the blob store (no
// HTTP). An index is resolved to the image that describes its version
// (see platformImage). It also returns the digest of that image manifest.
// Unknown manifest: meta.ErrNotFound; not a container image: meta.ErrInvalid.
// Layer bytes are verified against their digests as they are read.
func (r *Registry) Image(ctx context.Context, repo string, d digest.Digest) (v1.Image, digest.Digest, error) {
	rec, err := r.reg.GetOCIManifest(ctx, repo, d.String())
	if err != nil {
		return nil, "", err
	}
	m, err := r.loadManifest(ctx, rec)
	if err != nil {
		return nil, "", err
	}
	if isIndex(m.MediaType) {
		if m, rec, err = r.platformImage(ctx, repo, m); err != nil {
			return nil, "", err
		}
	}
	if !isImage(m) {
		return nil, "", fmt.Errorf("%w: %s is not a container image", meta.ErrInvalid, d)
	}
	raw, err := r.readBlob(ctx, digest.Digest(rec.Digest), r.cfg.MaxManifestBytes)
	if err != nil {
		return nil, "", err
	}
	core := &storedImage{ctx: ctx, r: r, raw: raw, mt: types.MediaType(rec.MediaType), m: m}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, "", err
	}
	return img, digest.Digest(rec.Digest), nil
}

// readBlob reads a whole blob of at most limit bytes.
func (r *Registry) readBlob(ctx context.Context, d digest.Digest, limit int64) ([]byte, error) {
	rc, err := r.blobs.Open(ctx, d, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: blob %s is larger than %d bytes", meta.ErrInvalid, d, limit)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("stored blob %s: %w", d, blob.ErrDigestMismatch)
	}
	return b, nil
}

// storedImage is a partial.CompressedImageCore over the blob store.
type storedImage struct {
	ctx context.Context
	r   *Registry
	raw []byte
	mt  types.MediaType
	m   *manifest
}

func (s *storedImage) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *storedImage) MediaType() (types.MediaType, error) { return s.mt, nil }

func (s *storedImage) RawConfigFile() ([]byte, error) {
	return s.r.readBlob(s.ctx, s.m.Config.digest(), s.r.cfg.MaxManifestBytes)
}

func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range s.m.Layers {
		if l.Digest == h.String() {
			return &storedLayer{img: s, d: l}, nil
		}
	}
	if s.m.Config.Digest == h.String() {
		return &storedLayer{img: s, d: *s.m.Config}, nil
	}
	return nil, fmt.Errorf("%w: layer %s is not in the image", meta.ErrNotFound, h)
}

// storedLayer is a partial.CompressedLayer read from the blob store.
type storedLayer struct {
	img *storedImage
	d   descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.d.Digest) }
func (l *storedLayer) Size() (int64, error)     { return l.d.size(), nil }
func (l *storedLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.d.MediaType), nil
}

// Compressed streams the layer and fails at EOF if its bytes do not hash
// to its digest.
func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	d := l.d.digest()
	rc, err := l.img.r.blobs.Open(l.img.ctx, d, 0, -1)
	if err != nil {
		return nil, err
	}
	return &verifying{rc: rc, v: d.Verifier(), d: d}, nil
}

// verifying checks the digest of what it read at EOF.
type verifying struct {
	rc io.ReadCloser
	v  digest.Verifier
	d  digest.Digest
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.v.Write(p[:n])
	if errors.Is(err, io.EOF) && !v.v.Verified() {
		return n, fmt.Errorf("stored layer %s: %w", v.d, blob.ErrDigestMismatch)
	}
	return n, err
}

func (v *verifying) Close() error { return v.rc.Close() }
