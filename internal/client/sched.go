package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cairnhq/cairn/internal/meta"
)

// SetDesired patches a dynamic deployment's desired state with the fields
// of patch (the JSON names of PATCH /v1/deployments/{dep}: replicas, cpu,
// memory_bytes, regions, health_check, min_healthy, autostop, isolation).
func (c *Client) SetDesired(ctx context.Context, dep string, patch map[string]any) (*meta.Deployment, error) {
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), patch, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// GetRollout returns one rollout of dep.
func (c *Client) GetRollout(ctx context.Context, dep, id string) (*meta.Rollout, error) {
	var ro meta.Rollout
	if err := c.call(ctx, http.MethodGet, depPath(dep)+"/rollouts/"+url.PathEscape(id), nil, &ro); err != nil {
		return nil, err
	}
	return &ro, nil
}

// ListRollouts returns dep's rollouts, newest first.
func (c *Client) ListRollouts(ctx context.Context, dep string) ([]meta.Rollout, error) {
	var out struct {
		Rollouts []meta.Rollout `json:"rollouts"`
	}
	if err := c.call(ctx, http.MethodGet, depPath(dep)+"/rollouts", nil, &out); err != nil {
		return nil, err
	}
	return out.Rollouts, nil
}

// DrainHost makes a host take no new instances and move its own away.
func (c *Client) DrainHost(ctx context.Context, id string) (*meta.Host, error) {
	var h meta.Host
	if err := c.call(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(id)+"/drain", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}
