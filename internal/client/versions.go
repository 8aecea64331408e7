package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cairnhq/cairn/internal/meta"
)

// VersionPage is one page of a deployment's versions, newest first.
// NextCursor is "" on the last page.
type VersionPage struct {
	Versions   []meta.Version `json:"versions"`
	NextCursor string         `json:"next_cursor"`
}

// ListVersions returns one page; limit 0 and cursor "" take the defaults.
func (c *Client) ListVersions(ctx context.Context, dep string, limit int, cursor string) (*VersionPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := depPath(dep) + "/versions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p VersionPage
	if err := c.call(ctx, http.MethodGet, path, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// maxPages stops AllVersions if a server keeps returning cursors.
const maxPages = 100_000

// AllVersions follows next_cursor and returns every version, newest first.
func (c *Client) AllVersions(ctx context.Context, dep string) ([]meta.Version, error) {
	all := []meta.Version{}
	cursor := ""
	for range maxPages {
		p, err := c.ListVersions(ctx, dep, 100, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Versions...)
		if p.NextCursor == "" {
			return all, nil
		}
		if p.NextCursor == cursor {
			return nil, fmt.Errorf("listing versions of %s: the server repeated cursor %q", dep, cursor)
		}
		cursor = p.NextCursor
	}
	return nil, fmt.Errorf("listing versions of %s: too many pages", dep)
}

// GetVersion returns version n of dep.
func (c *Client) GetVersion(ctx context.Context, dep string, n int64) (*meta.Version, error) {
	var v meta.Version
	if err := c.call(ctx, http.MethodGet, fmt.Sprintf("%s/versions/%d", depPath(dep), n), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GetVersionByID returns the version with id ("ver_…").
func (c *Client) GetVersionByID(ctx context.Context, id string) (*meta.Version, error) {
	var v meta.Version
	if err := c.call(ctx, http.MethodGet, "/v1/versions/"+url.PathEscape(id), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GetRelease returns the release named by its sha256 (hex).
func (c *Client) GetRelease(ctx context.Context, sha256 string) (*meta.Release, error) {
	var r meta.Release
	if err := c.call(ctx, http.MethodGet, "/v1/releases/"+url.PathEscape(sha256), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
