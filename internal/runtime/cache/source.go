package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Source is where the cache fetches release artifacts from.
type Source interface {
	// Size returns the artifact's length in bytes.
	Size(ctx context.Context, sha string) (int64, error)
	// ReadRange returns n bytes of the artifact from off; the caller closes.
	ReadRange(ctx context.Context, sha string, off, n int64) (io.ReadCloser, error)
}

// HTTP fetches from the API: GET /v1/releases/{sha}/artifact with Range,
// authenticated with a bearer token.
type HTTP struct {
	Base   string // the API's URL, e.g. https://api.example (nearest region first)
	Token  string
	Client *http.Client // http.DefaultClient when nil
}

func (h *HTTP) do(ctx context.Context, method, sha, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(h.Base, "/")+"/v1/releases/"+sha+"/artifact", nil)
	if err != nil {
		return nil, err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	return c.Do(req)
}

func (h *HTTP) Size(ctx context.Context, sha string) (int64, error) {
	resp, err := h.do(ctx, http.MethodHead, sha, "")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		return 0, fmt.Errorf("release %s: HEAD artifact: %s", sha, resp.Status)
	}
	return resp.ContentLength, nil
}

func (h *HTTP) ReadRange(ctx context.Context, sha string, off, n int64) (io.ReadCloser, error) {
	resp, err := h.do(ctx, http.MethodGet, sha, fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("release %s: GET artifact range %d+%d: %s", sha, off, n, resp.Status)
	}
	return resp.Body, nil
}
