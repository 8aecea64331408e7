package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
)

// GC runs one garbage collection on the server (or, with dryRun, reports
// what one would do) and returns its report. Another run in progress
// answers 409.
func (c *Client) GC(ctx context.Context, dryRun bool) (*gc.Report, error) {
	var rep gc.Report
	if err := c.call(ctx, http.MethodPost, "/v1/gc", map[string]bool{"dry_run": dryRun}, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// SetPolicy changes a deployment's retention_days and keep_versions; nil
// leaves a field as it is.
func (c *Client) SetPolicy(ctx context.Context, dep string, retentionDays, keepVersions *int) (*meta.Deployment, error) {
	in := map[string]any{}
	if retentionDays != nil {
		in["retention_days"] = *retentionDays
	}
	if keepVersions != nil {
		in["keep_versions"] = *keepVersions
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DomainHistory returns the version and release that served hostname at at.
func (c *Client) DomainHistory(ctx context.Context, hostname string, at time.Time) (*meta.History, error) {
	return c.history(ctx, domainPath(hostname)+"/history", at)
}

// DeploymentHistory returns the deployment's active version and release at at.
func (c *Client) DeploymentHistory(ctx context.Context, dep string, at time.Time) (*meta.History, error) {
	return c.history(ctx, depPath(dep)+"/history", at)
}

func (c *Client) history(ctx context.Context, path string, at time.Time) (*meta.History, error) {
	var h meta.History
	q := url.Values{"at": {at.UTC().Format(time.RFC3339Nano)}}
	if err := c.call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}
