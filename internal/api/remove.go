package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// deleteDeployment handles DELETE /v1/deployments/{dep}[?force=true]: the
// deployment stops serving and every version is archived; the records
// stay for audit and GC collects the releases on its usual rules. While a
// domain points at it the answer is 409 naming them, unless force removes
// them too.
func (a *API) deleteDeployment(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	force := false
	if s := r.URL.Query().Get("force"); s != "" {
		if force, err = strconv.ParseBool(s); err != nil {
			return badRequest("force must be true or false")
		}
	}
	out, err := a.cfg.Meta.DeleteDeployment(r.Context(), d.ID, force, principal(r).Actor())
	if errors.Is(err, meta.ErrConflict) {
		hosts, lerr := a.domainsOf(r, d.ID)
		if lerr != nil {
			return lerr
		}
		return problem.New(http.StatusConflict, "domains-attached", "deployment "+d.Name+
			" still serves "+strings.Join(hosts, ", ")+": remove those domains first, or delete with force")
	}
	if err != nil {
		return err
	}
	a.cfg.Changed()
	return writeJSON(w, http.StatusOK, out)
}

// domainsOf lists the hostnames pointing at deployment depID.
func (a *API) domainsOf(r *http.Request, depID string) ([]string, error) {
	all, err := a.cfg.Meta.ListDomains(r.Context())
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, dom := range all {
		if dom.DeploymentID == depID {
			hosts = append(hosts, dom.Hostname)
		}
	}
	return hosts, nil
}

// listDomains handles GET /v1/domains[?deployment=]: every domain, or
// those of one deployment, ordered by hostname.
func (a *API) listDomains(w http.ResponseWriter, r *http.Request) error {
	all, err := a.cfg.Meta.ListDomains(r.Context())
	if err != nil {
		return err
	}
	if p := principal(r); !p.ReadsAll() { // a deploy token sees its deployments' domains
		ds, err := a.cfg.Meta.ListDeployments(r.Context())
		if err != nil {
			return err
		}
		readable := map[string]bool{}
		for _, d := range ds {
			readable[d.ID] = p.Reads(d.Name)
		}
		var mine []meta.Domain
		for _, dom := range all {
			if readable[dom.DeploymentID] {
				mine = append(mine, dom)
			}
		}
		all = mine
	}
	out := []meta.Domain{}
	if key := r.URL.Query().Get("deployment"); key != "" {
		d, err := a.cfg.Meta.GetDeployment(r.Context(), key)
		if errors.Is(err, meta.ErrNotFound) {
			return notFound("deployment %q not found", key)
		}
		if err != nil {
			return err
		}
		for _, dom := range all {
			if dom.DeploymentID == d.ID {
				out = append(out, dom)
			}
		}
	} else if all != nil {
		out = all
	}
	return writeJSON(w, http.StatusOK, map[string]any{"domains": out})
}

// deleteDomain handles DELETE /v1/domains/{hostname}: 204.
func (a *API) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	dom, err := a.domain(r)
	if err != nil {
		return err
	}
	err = a.cfg.Meta.DeleteDomain(r.Context(), dom.Hostname, principal(r).Actor())
	if errors.Is(err, meta.ErrNotFound) {
		return notFound("domain %q not found", dom.Hostname)
	}
	if err != nil {
		return err
	}
	a.cfg.Changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
