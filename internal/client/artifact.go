package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// DownloadArtifact streams the bytes of the release named by sha256 (hex)
// into w and returns how many it wrote. A collected release answers 410.
// Nothing is buffered beyond io.Copy's buffer.
func (c *Client) DownloadArtifact(ctx context.Context, sha256 string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.base+"/v1/releases/"+url.PathEscape(sha256)+"/artifact", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/zstd, application/octet-stream, application/problem+json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	return io.Copy(w, resp.Body)
}
