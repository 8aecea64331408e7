package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// nameRE: a DNS label; "--" is reserved for preview hosts ({name}--v{N}).
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

const maxRetentionDays = 3650

func checkName(name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "--") {
		return badRequest("name %q must be a DNS label: 1-63 of a-z, 0-9 and single hyphens, not starting or ending with a hyphen", name)
	}
	if strings.HasPrefix(name, "dep_") {
		return badRequest("name %q must not start with dep_", name)
	}
	return nil
}

func checkRetention(days int) error {
	if days < 0 || days > maxRetentionDays {
		return badRequest("retention_days must be between 0 and %d", maxRetentionDays)
	}
	return nil
}

// deployment loads the {dep} path value.
func (a *API) deployment(r *http.Request) (*meta.Deployment, error) {
	key := r.PathValue("dep")
	d, err := a.cfg.Meta.GetDeployment(r.Context(), key)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("deployment %q not found", key)
	}
	return d, err
}

func (a *API) createDeployment(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name          string `json:"name"`
		Kind          string `json:"kind"`
		RetentionDays *int   `json:"retention_days"`
		KeepVersions  *int   `json:"keep_versions"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkName(in.Name); err != nil {
		return err
	}
	if in.Kind == "" {
		in.Kind = meta.KindStatic
	}
	if in.Kind != meta.KindStatic && in.Kind != meta.KindOCI && in.Kind != meta.KindRootfs {
		return badRequest("kind %q must be static, oci or rootfs", in.Kind)
	}
	d := &meta.Deployment{Name: in.Name, Kind: in.Kind, RetentionDays: a.defaultRetention()}
	if in.RetentionDays != nil {
		if err := checkRetention(*in.RetentionDays); err != nil {
			return err
		}
		d.RetentionDays = *in.RetentionDays
	}
	if in.KeepVersions != nil {
		if err := checkKeep(*in.KeepVersions); err != nil {
			return err
		}
		d.KeepVersions = *in.KeepVersions
	}
	err := a.createWithPolicy(r.Context(), d)
	if errors.Is(err, meta.ErrConflict) {
		return problem.New(http.StatusConflict, "conflict", "deployment "+in.Name+" already exists")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/deployments/"+d.ID)
	return writeJSON(w, http.StatusCreated, a.withURLs(d))
}

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request) error {
	all, err := a.cfg.Meta.ListDeployments(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	ds := []meta.Deployment{} // the ones the caller may read
	for _, d := range all {
		if p.Reads(d.Name) {
			ds = append(ds, d)
		}
	}
	deleted := r.URL.Query().Get("deleted") == "true"
	out := make([]meta.Deployment, 0, len(ds))
	for i := range ds {
		if ds[i].DeletedAt != nil && !deleted {
			continue
		}
		d, err := a.present(r.Context(), &ds[i])
		if err != nil {
			return err
		}
		out = append(out, *d)
	}
	ds = out
	return writeJSON(w, http.StatusOK, map[string]any{"deployments": ds})
}

func (a *API) getDeployment(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	if d, err = a.present(r.Context(), d); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (a *API) patchDeployment(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		RetentionDays *int  `json:"retention_days"`
		KeepVersions  *int  `json:"keep_versions"`
		AnonymousPull *bool `json:"anonymous_pull"` // oci deployments: pulls without a token
		// oci deployments: the tag whose push activates; "" for none
		ActivateOnPush *string `json:"activate_on_push"`
		SPA            *bool   `json:"spa"` // static deployments: see meta.Deployment
		CleanURLs      *bool   `json:"clean_urls"`
		ProxyRewrites  *bool   `json:"proxy_rewrites"`
		// how long source snapshots are kept (docs/design.md, "Sources,
		// builds and rebuilds")
		SourceRetentionDays *int `json:"source_retention_days"`
		// rootfs (and oci) deployments: the desired state (replicas, cpu, …)
		DesiredPatch
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	if (in.SPA != nil || in.CleanURLs != nil || in.ProxyRewrites != nil) && d.Kind != meta.KindStatic {
		return badRequest("spa, clean_urls and proxy_rewrites apply to static deployments; %q has kind %q", d.Name, d.Kind)
	}
	if in.AnonymousPull != nil {
		if err := a.setAnonymousPull(r, d, *in.AnonymousPull); err != nil {
			return err
		}
	}
	if in.RetentionDays != nil {
		if err := checkRetention(*in.RetentionDays); err != nil {
			return err
		}
	}
	if in.KeepVersions != nil {
		if err := checkKeep(*in.KeepVersions); err != nil {
			return err
		}
	}
	if in.SourceRetentionDays != nil {
		if n := *in.SourceRetentionDays; n < 0 || n > maxRetentionDays {
			return badRequest("source_retention_days must be between 0 and %d", maxRetentionDays)
		}
	}
	if err := a.patchDesired(r, d, &in.DesiredPatch); err != nil {
		return err
	}
	if in.ActivateOnPush != nil {
		if d, err = a.setActivateOnPush(r, d, *in.ActivateOnPush); err != nil {
			return err
		}
	}
	if d, err = a.setPolicy(r.Context(), d, meta.Policy{RetentionDays: in.RetentionDays, KeepVersions: in.KeepVersions,
		SPA: in.SPA, CleanURLs: in.CleanURLs, ProxyRewrites: in.ProxyRewrites, SourceRetentionDays: in.SourceRetentionDays}); err != nil {
		return err
	}
	a.cfg.Changed() // the edge serves by spa, clean_urls and proxy_rewrites
	if err := a.presentSched(r.Context(), d); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.withURLs(d))
}
