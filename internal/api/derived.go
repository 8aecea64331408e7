package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// Derivations makes derived artifacts on demand (derive.Deriver implements
// it): the rootfs release of an oci version, the erofs image of a rootfs
// release. Each is made once and then recorded.
type Derivations interface {
	Rootfs(ctx context.Context, dep *meta.Deployment, v *meta.Version) (*derive.Rootfs, error)
	Erofs(ctx context.Context, source string) (*derive.Result, error)
}

// getRootfs handles GET /v1/deployments/{dep}/versions/{n}/rootfs: the
// rootfs release derived from an oci version, derived by this request if
// it is the first to ask (the answer is a function of the immutable image,
// so a GET may fill it in).
func (a *API) getRootfs(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Derive == nil {
		return problem.New(http.StatusNotImplemented, "derive-off", "this server does not derive artifacts")
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	if d.Kind != meta.KindOCI {
		return badRequest("deployment %s is of kind %s: only oci versions derive a rootfs", d.Name, d.Kind)
	}
	n, err := versionNumber(r.PathValue("n"))
	if err != nil {
		return err
	}
	v, err := a.versionOf(r, d, n)
	if err != nil {
		return err
	}
	if v.CollectedAt != nil {
		return problem.New(http.StatusGone, "version-collected", "the release of this version was garbage collected")
	}
	rf, err := a.cfg.Derive.Rootfs(r.Context(), d, v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rf)
}

// getErofs handles GET /v1/releases/{sha}/erofs: the erofs image derived
// from a rootfs release, built by this request if it is the first to ask.
// Its bytes are GET /v1/releases/{erofs sha256}/artifact.
func (a *API) getErofs(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Derive == nil {
		return problem.New(http.StatusNotImplemented, "derive-off", "this server does not derive artifacts")
	}
	rel, err := a.release(r)
	if err != nil {
		return err
	}
	if rel.Kind != meta.KindRootfs {
		return badRequest("release %s is of kind %s: erofs images are built from rootfs releases", rel.SHA256, rel.Kind)
	}
	if rel.CollectedAt != nil {
		return problem.New(http.StatusGone, "release-collected", "release "+rel.SHA256+" was garbage collected")
	}
	res, err := a.cfg.Derive.Erofs(r.Context(), rel.SHA256)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// derivedView says what a release derives from and what derives from it.
type derivedView struct {
	From []meta.Derived    `json:"derived_from,omitempty"`
	To   map[string]string `json:"derived,omitempty"` // kind → sha256
}

func (a *API) derivedOf(ctx context.Context, sha string) (derivedView, error) {
	var v derivedView
	ds := a.cfg.Meta
	from, err := ds.DerivedFrom(ctx, sha)
	if err != nil {
		return v, err
	}
	v.From = from
	for _, kind := range []string{meta.DerivedRootfs, meta.DerivedErofs} {
		d, err := ds.GetDerived(ctx, kind, sha)
		if err == nil {
			if v.To == nil {
				v.To = map[string]string{}
			}
			v.To[kind] = d.SHA256
		} else if !errors.Is(err, meta.ErrNotFound) {
			return v, err
		}
	}
	return v, nil
}
