package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// checkHostname accepts a lower-case DNS name of at least two labels.
func checkHostname(h string) error {
	labels := strings.Split(h, ".")
	if len(h) > 253 || len(labels) < 2 {
		return badRequest("hostname %q must be a DNS name with at least two labels", h)
	}
	for _, l := range labels {
		if !nameRE.MatchString(l) {
			return badRequest("hostname %q is not a valid lower-case DNS name", h)
		}
	}
	return nil
}

func (a *API) createDomain(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Hostname      string `json:"hostname"`
		Deployment    string `json:"deployment"`
		VersionNumber *int64 `json:"version_number"`
		HTTPSRedirect bool   `json:"https_redirect"`
		HSTS          bool   `json:"hsts"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	in.Hostname = strings.ToLower(strings.TrimSuffix(in.Hostname, "."))
	if err := checkHostname(in.Hostname); err != nil {
		return err
	}
	d, err := a.cfg.Meta.GetDeployment(r.Context(), in.Deployment)
	if errors.Is(err, meta.ErrNotFound) {
		return notFound("deployment %q not found", in.Deployment)
	}
	if err != nil {
		return err
	}
	dom := &meta.Domain{Hostname: in.Hostname, DeploymentID: d.ID, HTTPSRedirect: in.HTTPSRedirect, HSTS: in.HSTS}
	var v *meta.Version
	if in.VersionNumber != nil {
		if v, err = a.versionOf(r, d, *in.VersionNumber); err != nil {
			return err
		}
		dom.VersionID = &v.ID
	}
	err = a.cfg.Meta.CreateDomain(r.Context(), dom, actorOf(r))
	switch {
	case errors.Is(err, meta.ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "domain "+in.Hostname+" already exists")
	case errors.Is(err, meta.ErrGone):
		return a.collected(r, v)
	case err != nil:
		return err
	}
	a.cfg.Changed()
	w.Header().Set("Location", "/v1/domains/"+dom.Hostname)
	return writeJSON(w, http.StatusCreated, dom)
}

func (a *API) domain(r *http.Request) (*meta.Domain, error) {
	h := strings.ToLower(r.PathValue("hostname"))
	if err := checkHostname(h); err != nil {
		return nil, err
	}
	dom, err := a.cfg.Meta.GetDomain(r.Context(), h)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("domain %q not found", h)
	}
	return dom, err
}

func (a *API) getDomain(w http.ResponseWriter, r *http.Request) error {
	dom, err := a.domain(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, dom)
}

// optInt is a JSON number or null that knows whether it was given.
type optInt struct {
	set bool
	v   *int64
}

func (o *optInt) UnmarshalJSON(b []byte) error {
	o.set = true
	return json.Unmarshal(b, &o.v)
}

// patchDomain pins the domain to version_number, or makes it follow the
// active version when version_number is null or absent; a body with only
// https_redirect and/or hsts changes those and leaves the version as it is.
func (a *API) patchDomain(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		VersionNumber optInt `json:"version_number"`
		HTTPSRedirect *bool  `json:"https_redirect"`
		HSTS          *bool  `json:"hsts"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	dom, err := a.domain(r)
	if err != nil {
		return err
	}
	if in.HTTPSRedirect != nil || in.HSTS != nil {
		redirect, hsts := dom.HTTPSRedirect, dom.HSTS
		if in.HTTPSRedirect != nil {
			redirect = *in.HTTPSRedirect
		}
		if in.HSTS != nil {
			hsts = *in.HSTS
		}
		if dom, err = a.cfg.Meta.SetDomainHTTPS(r.Context(), dom.Hostname, redirect, hsts, actorOf(r)); err != nil {
			return err
		}
		if !in.VersionNumber.set {
			a.cfg.Changed()
			return writeJSON(w, http.StatusOK, dom)
		}
	}
	var v *meta.Version
	var vid *string
	if in.VersionNumber.v != nil {
		d, err := a.cfg.Meta.GetDeployment(r.Context(), dom.DeploymentID)
		if err != nil {
			return err
		}
		if v, err = a.versionOf(r, d, *in.VersionNumber.v); err != nil {
			return err
		}
		vid = &v.ID
	}
	dom, err = a.cfg.Meta.SetDomainVersion(r.Context(), dom.Hostname, vid, actorOf(r))
	if errors.Is(err, meta.ErrGone) {
		return a.collected(r, v)
	}
	if err != nil {
		return err
	}
	a.cfg.Changed()
	return writeJSON(w, http.StatusOK, dom)
}
