package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/meta"
)

// RegisterHost registers (or re-registers) a host (agent token).
func (c *Client) RegisterHost(ctx context.Context, in api.Registration) (*meta.Host, error) {
	var h meta.Host
	if err := c.call(ctx, http.MethodPost, "/v1/hosts", in, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Heartbeat reports a host's instances (agent token).
func (c *Client) Heartbeat(ctx context.Context, hostID string, in api.Heartbeat) error {
	return c.call(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(hostID)+"/heartbeat", in, nil)
}

// Desired returns a host's desired instances; with gen set, it waits up
// to wait for a set other than gen (agent token).
func (c *Client) Desired(ctx context.Context, hostID, gen string, wait time.Duration) (*api.DesiredSet, error) {
	var out api.DesiredSet
	q := url.Values{"gen": {gen}, "wait": {wait.String()}}
	if err := c.call(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(hostID)+"/desired?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListHosts returns every host.
func (c *Client) ListHosts(ctx context.Context) ([]meta.Host, error) {
	var out struct {
		Hosts []meta.Host `json:"hosts"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/hosts", nil, &out); err != nil {
		return nil, err
	}
	return out.Hosts, nil
}

// ListInstances returns a deployment's instances.
func (c *Client) ListInstances(ctx context.Context, dep string) ([]meta.Instance, error) {
	var out struct {
		Instances []meta.Instance `json:"instances"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(dep)+"/instances", nil, &out); err != nil {
		return nil, err
	}
	return out.Instances, nil
}

// SetReplicas sets a deployment's replicas.
func (c *Client) SetReplicas(ctx context.Context, dep string, n int) (*meta.Deployment, error) {
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, "/v1/deployments/"+url.PathEscape(dep), map[string]int{"replicas": n}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// InstanceLogs streams an instance's logs to w; with follow, until ctx
// ends or the instance stops.
func (c *Client) InstanceLogs(ctx context.Context, dep, id string, follow bool, w io.Writer) error {
	path := fmt.Sprintf("/v1/deployments/%s/instances/%s/logs?follow=%t", url.PathEscape(dep), url.PathEscape(id), follow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
