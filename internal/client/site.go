package client

import (
	"context"
	"net/http"

	"github.com/cairnhq/cairn/internal/meta"
)

// SetSite changes how the edge serves a static deployment: spa (unknown
// paths of HTML requests get the entrypoint) and clean_urls (/about serves
// about.html); nil leaves a setting as it is.
func (c *Client) SetSite(ctx context.Context, dep string, spa, cleanURLs *bool) (*meta.Deployment, error) {
	in := map[string]any{}
	if spa != nil {
		in["spa"] = *spa
	}
	if cleanURLs != nil {
		in["clean_urls"] = *cleanURLs
	}
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
