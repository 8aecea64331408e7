package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/token"
)

// findDeployment finds a deployment by name (never by id: a repository
// named "dep_…" is not a deployment id). Missing: meta.ErrNotFound.
func (r *Registry) findDeployment(ctx context.Context, name string) (*meta.Deployment, error) {
	d, err := r.meta.GetDeployment(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Name != name {
		return nil, fmt.Errorf("%w: deployment %q", meta.ErrNotFound, name)
	}
	return d, nil
}

// pushTarget returns the deployment owning repo for a push, creating the
// repository record when missing and, for a repository without a "/", the
// deployment (kind oci). A nested repository ("team/app") belongs to the
// deployment its first component names, which must exist: a push never
// creates a deployment it does not push to (NAME_INVALID). A deployment of
// another kind is DENIED.
func (r *Registry) pushTarget(ctx context.Context, repo string) (*meta.Deployment, error) {
	name := deploymentName(repo)
	d, err := r.findDeployment(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		if name != repo {
			return nil, public(errNameInvalid, "repository %q: the first component of a repository names its deployment, "+
				"and there is no deployment %q; a push creates a deployment only for a repository without a \"/\" "+
				"(push to %q, or create the oci deployment %q first)", repo, name, name, name)
		}
		d, err = r.createDeployment(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	if d.Kind != meta.KindOCI {
		return nil, public(errDenied, "deployment %q is of kind %s; only oci deployments take images", name, d.Kind)
	}
	if cur, err := r.reg.GetOCIRepository(ctx, repo); err == nil && cur.DeploymentID == d.ID {
		return d, nil // the common case: no write
	}
	err = r.reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: repo, DeploymentID: d.ID})
	if errors.Is(err, meta.ErrConflict) {
		return nil, public(errDenied, "repository %q belongs to another deployment", repo)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// createDeployment creates an oci deployment for a first push. A concurrent
// push may have created it first; that one is returned.
func (r *Registry) createDeployment(ctx context.Context, name string) (*meta.Deployment, error) {
	if err := checkDeploymentName(name); err != nil {
		return nil, err
	}
	d := &meta.Deployment{Name: name, Kind: meta.KindOCI}
	err := r.meta.CreateDeployment(ctx, d, token.Actor(ctx))
	if errors.Is(err, meta.ErrConflict) {
		return r.findDeployment(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	r.log.Info("registry: created deployment for a push", "deployment", d.ID, "name", name)
	return d, nil
}

// pullRepository checks that repo exists. Missing: errNameUnknown.
func (r *Registry) pullRepository(ctx context.Context, repo string) error {
	_, err := r.reg.GetOCIRepository(ctx, repo)
	if errors.Is(err, meta.ErrNotFound) {
		return public(errNameUnknown, "repository %q", repo)
	}
	return err
}
