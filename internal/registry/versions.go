package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/token"
	"github.com/opencontainers/go-digest"
)

// VersionFromImage publishes a version of dep (kind oci) from the image that
// ref (a tag or a digest) names in the repository dep.Name, as a tag push
// does, activating it when activate is set. Unknown deployment kind, a
// malformed reference, a sha512 manifest or content that is not a container
// image: meta.ErrInvalid. Unknown reference: meta.ErrNotFound.
func (r *Registry) VersionFromImage(ctx context.Context, dep *meta.Deployment, ref string, activate bool, actor string) (*meta.Version, error) {
	if dep.Kind != meta.KindOCI {
		return nil, fmt.Errorf("%w: deployment %q is of kind %s, not oci", meta.ErrInvalid, dep.Name, dep.Kind)
	}
	parsed, err := parseReference(ref, errManifestUnknown)
	if err != nil {
		return nil, fmt.Errorf("%w: image reference %q is neither a tag nor a sha256/sha512 digest", meta.ErrInvalid, ref)
	}
	rec, err := r.resolve(ctx, dep.Name, parsed)
	if errors.Is(err, errManifestUnknown) {
		return nil, fmt.Errorf("%w: image %q in repository %s", meta.ErrNotFound, ref, dep.Name)
	}
	if err != nil {
		return nil, err
	}
	m, err := r.loadManifest(ctx, rec)
	if err != nil {
		return nil, err
	}
	nv, err := r.newVersion(ctx, dep, digest.Digest(rec.Digest), m)
	if err != nil {
		return nil, err
	}
	nv.Activate, nv.Actor = activate, actor
	v, err := r.meta.CreateVersion(ctx, nv)
	if err != nil {
		return nil, err
	}
	r.cfg.Changed()
	return v, nil
}

// publishPush records a push of manifest d under tags to the deployment's
// own repository. A push never activates anything by itself: a digest
// without a version becomes a new version that is not active; a digest that
// already has one (re-tagged: the tags were stored with the manifest, and a
// version's tags are read from them) makes no version. Only when tags hold
// the deployment's activate_on_push tag is that version activated. Only
// runnable sha256 images make versions: sha512 manifests, artifacts (an
// artifactType, a non-image config, a subject: signatures, SBOMs) and
// indexes without a stored image for a platform are stored without one.
func (r *Registry) publishPush(ctx context.Context, dep *meta.Deployment, d digest.Digest, m *manifest, tags []string) error {
	if d.Algorithm() != digest.SHA256 || m.ArtifactType != "" || m.Subject != nil {
		return nil
	}
	activate := dep.ActivateOnPush != "" && slices.Contains(tags, dep.ActivateOnPush)
	v, err := r.reg.OCIVersionByDigest(ctx, dep.ID, d.String())
	switch {
	case err == nil:
		if !activate || (dep.ActiveVersionID != nil && *dep.ActiveVersionID == v.ID) {
			return nil
		}
		if _, err := r.meta.Activate(ctx, dep.ID, v.VersionNumber, token.Actor(ctx), meta.ActionActivate); err != nil {
			return err
		}
		r.log.Info("registry: activated on push", "deployment", dep.ID, "tag", dep.ActivateOnPush, "version", v.VersionNumber)
		r.cfg.Changed()
		return nil
	case !errors.Is(err, meta.ErrNotFound):
		return err
	}
	nv, err := r.newVersion(ctx, dep, d, m)
	if errors.Is(err, meta.ErrInvalid) {
		return nil // not a runnable image
	}
	if err != nil {
		return err
	}
	nv.Activate, nv.Actor = activate, token.Actor(ctx)
	if _, err := r.meta.CreateVersion(ctx, nv); err != nil {
		return err
	}
	r.cfg.Changed()
	return nil
}

// newVersion describes the version of manifest m (digest d) in dep's own
// repository: the release is the manifest (its sha256, its size, an oci://
// URI); the artifact manifest counts the layers, sums config and layer sizes
// and takes the entrypoint from the image config (Entrypoint then Cmd). An
// index is described by its image for linux on this machine's architecture
// (else linux/amd64, else its first stored image).
func (r *Registry) newVersion(ctx context.Context, dep *meta.Deployment, d digest.Digest, m *manifest) (meta.NewVersion, error) {
	if d.Algorithm() != digest.SHA256 {
		return meta.NewVersion{}, fmt.Errorf("%w: %s: only sha256 manifests make versions", meta.ErrInvalid, d)
	}
	size := m.size
	img := m
	if isIndex(m.MediaType) {
		var err error
		if img, _, err = r.platformImage(ctx, dep.Name, m); err != nil {
			return meta.NewVersion{}, err
		}
	}
	if !isImage(img) {
		return meta.NewVersion{}, fmt.Errorf("%w: %s is not a container image", meta.ErrInvalid, d)
	}
	total := img.Config.size()
	for _, l := range img.Layers {
		total += l.size()
	}
	ep, err := r.entrypoint(ctx, img.Config)
	if err != nil {
		return meta.NewVersion{}, err
	}
	return meta.NewVersion{
		DeploymentID: dep.ID,
		Release: meta.Release{
			SHA256: d.Encoded(), Kind: meta.KindOCI, SizeBytes: size,
			URI: fmt.Sprintf("oci://%s/%s@%s", r.cfg.Host, dep.Name, d),
		},
		Manifest: meta.Manifest{Files: int64(len(img.Layers)), TotalBytes: total, Entrypoint: ep},
	}, nil
}

// isImage: an image manifest whose config is an image config, not an artifact.
func isImage(m *manifest) bool {
	return !isIndex(m.MediaType) && m.ArtifactType == "" &&
		(m.Config.MediaType == mtOCIConfig || m.Config.MediaType == mtDockerConfig)
}

// platformImage picks the image of an index that describes its version,
// and returns it with its record.
func (r *Registry) platformImage(ctx context.Context, repo string, idx *manifest) (*manifest, *meta.OCIManifest, error) {
	rank := func(d descriptor) int {
		switch {
		case d.Platform == nil || d.Platform.OS != "linux":
			return 2
		case d.Platform.Architecture == runtime.GOARCH:
			return 0
		case d.Platform.Architecture == "amd64":
			return 1
		}
		return 2
	}
	children := slices.Clone(*idx.Manifests)
	slices.SortStableFunc(children, func(a, b descriptor) int { return rank(a) - rank(b) })
	for _, c := range children {
		rec, err := r.reg.GetOCIManifest(ctx, repo, c.Digest)
		if errors.Is(err, meta.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		m, err := r.loadManifest(ctx, rec)
		if err != nil {
			return nil, nil, err
		}
		if isImage(m) {
			return m, rec, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: the index has no stored image", meta.ErrInvalid)
}

// loadManifest reads and parses a stored manifest.
func (r *Registry) loadManifest(ctx context.Context, rec *meta.OCIManifest) (*manifest, error) {
	rc, err := r.blobs.Open(ctx, digest.Digest(rec.Digest), 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, r.cfg.MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(rec.MediaType, body)
	if err != nil {
		return nil, fmt.Errorf("stored manifest %s: %w", rec.Digest, err)
	}
	return m, nil
}

// entrypoint reads config.Entrypoint and config.Cmd of an image config and
// joins them with spaces. A config that is not such JSON has none.
func (r *Registry) entrypoint(ctx context.Context, config *descriptor) (string, error) {
	rc, err := r.blobs.Open(ctx, config.digest(), 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var c struct {
		Config struct {
			Entrypoint []string `json:"Entrypoint"`
			Cmd        []string `json:"Cmd"`
		} `json:"config"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, r.cfg.MaxManifestBytes)).Decode(&c); err != nil {
		return "", nil
	}
	return strings.Join(append(c.Config.Entrypoint, c.Config.Cmd...), " "), nil
}
