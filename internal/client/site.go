package client

import (
	"context"
	"net/http"

	"github.com/cairnhq/cairn/internal/meta"
)

// SetSite changes how the edge serves a static deployment: spa (unknown
// paths of HTML requests get the entrypoint), clean_urls (/about serves
// about.html) and proxy_rewrites (_redirects may rewrite to external URLs,
// which the edge proxies); nil leaves a setting as it is.
func (c *Client) SetSite(ctx context.Context, dep string, spa, cleanURLs, proxyRewrites *bool) (*meta.Deployment, error) {
	in := map[string]any{}
	if spa != nil {
		in["spa"] = *spa
	}
	if cleanURLs != nil {
		in["clean_urls"] = *cleanURLs
	}
	if proxyRewrites != nil {
		in["proxy_rewrites"] = *proxyRewrites
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SetActivateOnPush sets the registry tag whose push activates the version
// it names (an oci deployment); "" turns it off: a push never activates.
func (c *Client) SetActivateOnPush(ctx context.Context, dep, tag string) (*meta.Deployment, error) {
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), map[string]any{"activate_on_push": tag}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
