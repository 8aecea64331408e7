package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// ClaimBuild asks for a queued build host may run, waiting up to wait
// for one; nil when none came (agent token).
func (c *Client) ClaimBuild(ctx context.Context, hostID string, wait time.Duration) (*hostapi.Build, error) {
	path := "/v1/hosts/" + url.PathEscape(hostID) + "/builds/claim?" + url.Values{"wait": {wait.String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, decodeError(resp)
	}
	var b hostapi.Build
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&b); err != nil {
		return nil, fmt.Errorf("claiming a build: decoding the response: %w", err)
	}
	return &b, nil
}

// SendBuildResult reports how a build ended (agent token): res, the
// build's log (its last meta.MaxBuildLog bytes) and, when the command
// exited 0 and its output was packed, the artifact.
func (c *Client) SendBuildResult(ctx context.Context, hostID, buildID string, res hostapi.BuildResult, log []byte,
	artifact io.Reader) (*meta.Build, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(func() error {
			w, err := mw.CreateFormField("result")
			if err != nil {
				return err
			}
			if err := json.NewEncoder(w).Encode(res); err != nil {
				return err
			}
			if w, err = mw.CreateFormField("log"); err != nil {
				return err
			}
			if _, err := w.Write(log); err != nil {
				return err
			}
			if artifact != nil {
				if w, err = mw.CreateFormFile("artifact", "artifact.tar.zst"); err != nil {
					return err
				}
				if _, err := io.Copy(w, artifact); err != nil {
					return err
				}
			}
			return mw.Close()
		}())
	}()
	var out meta.Build
	path := "/v1/hosts/" + url.PathEscape(hostID) + "/builds/" + url.PathEscape(buildID) + "/result"
	if err := c.request(ctx, http.MethodPost, path, pr, mw.FormDataContentType(), &out); err != nil {
		pr.CloseWithError(err)
		return nil, err
	}
	return &out, nil
}
