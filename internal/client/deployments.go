package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

func depPath(dep string) string { return "/v1/deployments/" + url.PathEscape(dep) }

// CreateDeployment creates a deployment; retentionDays 0 takes the server's
// default. A taken name answers 409.
func (c *Client) CreateDeployment(ctx context.Context, name, kind string, retentionDays int) (*meta.Deployment, error) {
	in := map[string]any{"name": name, "kind": kind}
	if retentionDays > 0 {
		in["retention_days"] = retentionDays
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPost, "/v1/deployments", in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// GetDeployment finds a deployment by id or name.
func (c *Client) GetDeployment(ctx context.Context, dep string) (*meta.Deployment, error) {
	var d meta.Deployment
	if err := c.call(ctx, http.MethodGet, depPath(dep), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDeployments returns every deployment that is not deleted.
func (c *Client) ListDeployments(ctx context.Context) ([]meta.Deployment, error) {
	return c.listDeployments(ctx, "/v1/deployments")
}

// AllDeployments returns every deployment, deleted ones included.
func (c *Client) AllDeployments(ctx context.Context) ([]meta.Deployment, error) {
	return c.listDeployments(ctx, "/v1/deployments?deleted=true")
}

func (c *Client) listDeployments(ctx context.Context, path string) ([]meta.Deployment, error) {
	var out struct {
		Deployments []meta.Deployment `json:"deployments"`
	}
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Deployments, nil
}

// PublishOptions are the query parameters of a tar publish.
type PublishOptions struct {
	Entrypoint string // "" takes the server's default
	Activate   bool
	// Create makes the server create a missing deployment (kind static) in
	// the same transaction as its first version: a failed publish leaves no
	// deployment behind.
	Create bool
	// SHA256, if set, is the release the upload must pack to (a `cairn
	// pack` artifact); the server refuses another with 422.
	SHA256 string
	// SourceSHA256, if set, names the stored source snapshot the release
	// was built from (PutSource); the version records it.
	SourceSHA256 string
}

// PublishTar uploads body, a tar stream (plain, gzip or zstd) of the built
// directory, as a new version of dep. The body is streamed with chunked
// encoding, never buffered whole; if reading it fails the request is
// aborted with that error.
func (c *Client) PublishTar(ctx context.Context, dep string, body io.Reader, o PublishOptions) (*meta.Version, error) {
	if body == nil {
		return nil, errors.New("publish: nil body")
	}
	q := url.Values{}
	if o.Entrypoint != "" {
		q.Set("entrypoint", o.Entrypoint)
	}
	q.Set("activate", strconv.FormatBool(o.Activate))
	if o.Create {
		q.Set("create", "true")
	}
	if o.SHA256 != "" {
		q.Set("sha256", o.SHA256)
	}
	if o.SourceSHA256 != "" {
		q.Set("source_sha256", o.SourceSHA256)
	}
	// Wrapping hides any Len method so that net/http always streams.
	var v meta.Version
	err := c.request(ctx, http.MethodPost, depPath(dep)+"/versions?"+q.Encode(),
		struct{ io.Reader }{body}, "application/x-tar", &v)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// PublishRootfs uploads a tar stream of a root filesystem (plain, gzip or
// zstd) as a new version of rootfs deployment dep, with its runtime
// settings (nil: the server's defaults).
// With create the server makes a missing deployment (kind rootfs) in the
// transaction of its first version.
func (c *Client) PublishRootfs(ctx context.Context, dep string, body io.Reader, rt *meta.Runtime, activate, create bool) (*meta.Version, error) {
	if body == nil {
		return nil, errors.New("publish: nil body")
	}
	q := url.Values{}
	if rt != nil {
		js, err := json.Marshal(rt)
		if err != nil {
			return nil, err
		}
		q.Set("runtime", string(js))
	}
	q.Set("activate", strconv.FormatBool(activate))
	if create {
		q.Set("create", "true")
		q.Set("kind", meta.KindRootfs)
	}
	var v meta.Version
	if err := c.request(ctx, http.MethodPost, depPath(dep)+"/versions?"+q.Encode(),
		struct{ io.Reader }{body}, "application/x-tar", &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Activate makes version n the deployment's active version. A collected
// Activate makes version n active. For a dynamic deployment with
// instances the answer carries a running Rollout (see Point).
func (c *Client) Activate(ctx context.Context, dep string, n int64) (*meta.Deployment, error) {
	return c.Point(ctx, dep, meta.ActionActivate, n, 0)
}

// Rollback makes version n active again, or, when n <= 0, the version that
// was active before the current one.
func (c *Client) Rollback(ctx context.Context, dep string, n int64) (*meta.Deployment, error) {
	return c.Point(ctx, dep, meta.ActionRollback, n, 0)
}

// Point is activate (action "activate", n required) or rollback (n <= 0:
// the previous active version). A dynamic deployment with instances
// answers with its active version unchanged and a running Rollout, which
// the scheduler finishes within timeout (0: the server's default); follow
// it with GetRollout.
func (c *Client) Point(ctx context.Context, dep, action string, n int64, timeout time.Duration) (*meta.Deployment, error) {
	in := map[string]any{}
	if n > 0 {
		in["version_number"] = n
	}
	if timeout > 0 {
		in["rollout_timeout"] = timeout.String()
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPost, depPath(dep)+"/"+action, in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeleteDeployment stops dep from serving and archives its versions (the
// records stay). While domains point at it the API answers 409, unless
// force removes them.
func (c *Client) DeleteDeployment(ctx context.Context, dep string, force bool) (*meta.Deployment, error) {
	path := depPath(dep)
	if force {
		path += "?force=true"
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodDelete, path, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
