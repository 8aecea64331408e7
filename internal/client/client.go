// Package client is a small typed client of cairn's HTTP API (v1). Methods
// take a context first and return the meta records the API sends; any non-2xx
// answer becomes a *Error decoded from the problem+json body.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client talks to one API base URL with one bearer token.
type Client struct {
	base  string
	token string
	// HTTP is the client used for every request; it has no overall timeout
	// because uploads may be long. Replace it to add one.
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:7800).
// An empty token sends no Authorization header; mutating calls then get 401.
func New(baseURL, token string) *Client {
	return &Client{
		base:      strings.TrimRight(baseURL, "/"),
		token:     token,
		HTTP:      &http.Client{},
		UserAgent: "cairn-cli",
	}
}

// BaseURL returns the API base URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// request sends one call. body, if not nil, is sent as is with contentType;
// ContentLength is left unknown (chunked) unless body is a *bytes.Reader.
// A 2xx answer is decoded into out (unless out is nil); anything else
// returns a *Error.
func (c *Client) request(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	return c.do(req, out)
}

// do sends req with the token and user agent. A 2xx answer is decoded
// into out (JSON), or copied into it if it is a *strings.Builder (text,
// at most MaxBuildLog bytes), or discarded if out is nil; anything else
// returns a *Error.
func (c *Client) do(req *http.Request, out any) error {
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	switch out := out.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	case *strings.Builder:
		_, err := io.Copy(out, io.LimitReader(resp.Body, MaxBuildLog))
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the response: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// call sends in (if not nil) as a JSON body.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return c.request(ctx, method, path, nil, "", out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.request(ctx, method, path, bytes.NewReader(b), "application/json", out)
}
