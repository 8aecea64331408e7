package api

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// An oci version runs from the rootfs release derived from its image
// (docs/design.md, "Derived artifacts"): placement derives it on demand
// (once; later calls read the record), and the desired instance names the
// derived release, its tree digest, and the runtime the image config
// gives (Entrypoint+Cmd, Env, WorkingDir, User, the lowest exposed TCP
// port). An oci version whose rootfs cannot be derived is not placed.

// ociRootfs is the derived rootfs of oci version v of deployment d. A
// version's image is immutable, so is its derivation: kept in memory by
// the image's digest after the first call.
func (a *API) ociRootfs(ctx context.Context, d *meta.Deployment, v *meta.Version) (*derive.Rootfs, error) {
	if a.cfg.Derive == nil {
		return nil, fmt.Errorf("oci version %d of %s: this server does not derive rootfs releases", v.VersionNumber, d.Name)
	}
	key := d.ID + "/" + v.ArtifactSHA256
	if rf, ok := a.derived.Load(key); ok {
		return rf.(*derive.Rootfs), nil
	}
	rf, err := a.cfg.Derive.Rootfs(ctx, d, v)
	if err != nil {
		return nil, err
	}
	if rf.Release.TreeSHA256 == "" || len(rf.Runtime.Cmd) == 0 {
		return nil, fmt.Errorf("oci version %d of %s: its image has no command (Entrypoint or Cmd)", v.VersionNumber, d.Name)
	}
	a.derived.Store(key, rf)
	return rf, nil
}

// Runnable says whether version v of d can run on a host: a rootfs
// version with a runtime, or an oci version whose rootfs derives.
func (a *API) Runnable(ctx context.Context, d *meta.Deployment, v *meta.Version) bool {
	if v.Status == meta.StatusCollected {
		return false
	}
	if d.Kind != meta.KindOCI {
		return v.Runtime != nil
	}
	if _, err := a.ociRootfs(ctx, d, v); err != nil {
		a.log.Warn("oci version not placed: no rootfs", "deployment", d.Name, "version", v.VersionNumber, "err", err)
		return false
	}
	return true
}

// setOCIRuntime points desired instance di at the derived rootfs of oci
// version v and gives it the image's runtime.
func (a *API) setOCIRuntime(ctx context.Context, di *hostapi.Desired, v *meta.Version) error {
	d, err := a.cfg.Meta.GetDeployment(ctx, v.DeploymentID)
	if err != nil {
		return err
	}
	rf, err := a.ociRootfs(ctx, d, v)
	if err != nil {
		return err
	}
	rt := rf.Runtime
	di.Release, di.TreeDigest = rf.Release.SHA256, rf.Release.TreeSHA256
	di.Cmd, di.Env, di.Workdir, di.User, di.Port = rt.Cmd, rt.Env, rt.Workdir, rt.User, rt.Port
	return nil
}
