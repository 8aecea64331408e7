package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cairnhq/cairn/internal/meta"
)

func domainPath(host string) string { return "/v1/domains/" + url.PathEscape(host) }

// CreateDomain makes hostname serve dep: pinned to version n, or following
// the deployment's active version when n <= 0. A taken hostname answers 409.
func (c *Client) CreateDomain(ctx context.Context, hostname, dep string, n int64) (*meta.Domain, error) {
	in := map[string]any{"hostname": hostname, "deployment": dep}
	if n > 0 {
		in["version_number"] = n
	}
	var d meta.Domain
	if err := c.call(ctx, http.MethodPost, "/v1/domains", in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// GetDomain returns the domain record of hostname.
func (c *Client) GetDomain(ctx context.Context, hostname string) (*meta.Domain, error) {
	var d meta.Domain
	if err := c.call(ctx, http.MethodGet, domainPath(hostname), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SetDomainVersion pins hostname to version n of its deployment, or makes
// it follow the active version when n <= 0. A collected version answers 410.
func (c *Client) SetDomainVersion(ctx context.Context, hostname string, n int64) (*meta.Domain, error) {
	in := map[string]any{"version_number": nil}
	if n > 0 {
		in["version_number"] = n
	}
	var d meta.Domain
	if err := c.call(ctx, http.MethodPatch, domainPath(hostname), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SetDomainHTTPS sets the domain's https_redirect and/or hsts (nil: left
// as it is); its version is left as it is.
func (c *Client) SetDomainHTTPS(ctx context.Context, hostname string, redirect, hsts *bool) (*meta.Domain, error) {
	in := map[string]any{}
	if redirect != nil {
		in["https_redirect"] = *redirect
	}
	if hsts != nil {
		in["hsts"] = *hsts
	}
	var d meta.Domain
	if err := c.call(ctx, http.MethodPatch, domainPath(hostname), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDomains returns every domain, or those of deployment dep when set,
// ordered by hostname.
func (c *Client) ListDomains(ctx context.Context, dep string) ([]meta.Domain, error) {
	path := "/v1/domains"
	if dep != "" {
		path += "?deployment=" + url.QueryEscape(dep)
	}
	var out struct {
		Domains []meta.Domain `json:"domains"`
	}
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Domains, nil
}

// DeleteDomain stops hostname from serving anything.
func (c *Client) DeleteDomain(ctx context.Context, hostname string) error {
	return c.call(ctx, http.MethodDelete, domainPath(hostname), nil, nil)
}
