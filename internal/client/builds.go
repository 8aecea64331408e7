package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// Sources, builds and rebuilds (docs/design.md, "Sources, builds and
// rebuilds").

// GetSource returns the stored source snapshot sha256 (hex) of dep; 404
// when it is not stored or was collected.
func (c *Client) GetSource(ctx context.Context, dep, sha256 string) (*meta.Release, error) {
	var r meta.Release
	if err := c.call(ctx, http.MethodGet, depPath(dep)+"/sources/"+url.PathEscape(sha256), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PutSource uploads body, a source snapshot in cairn's release format
// (a `cairn pack` artifact) of size bytes, as snapshot sha256 of dep. The
// server repacks it and refuses (422) one that does not come out as
// sha256.
func (c *Client) PutSource(ctx context.Context, dep, sha256 string, body io.Reader, size int64) (*meta.Release, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+depPath(dep)+"/sources/"+url.PathEscape(sha256), body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/zstd")
	req.Header.Set("Accept", "application/json, application/problem+json")
	var r meta.Release
	if err := c.do(req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// BuildRequest is the body of POST /v1/deployments/{dep}/builds. Zero
// values take the server's defaults.
type BuildRequest struct {
	SourceSHA256 string            `json:"source_sha256"`
	Builder      string            `json:"builder"` // "NAME:N" or "sha256:HEX"
	Command      string            `json:"command"`
	Output       string            `json:"output,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Timeout      string            `json:"timeout,omitempty"`
	MemoryBytes  int64             `json:"memory_bytes,omitempty"`
	Entrypoint   string            `json:"entrypoint,omitempty"`
	Activate     bool              `json:"activate"`
	// Create makes the server create a missing (static) deployment with
	// the version the build makes; a failed build leaves none.
	Create bool   `json:"create,omitempty"`
	Host   string `json:"host,omitempty"` // only this host may run it
	// SourceDateEpoch is the build's SOURCE_DATE_EPOCH in seconds (the
	// CLI sends the source's last commit time); nil: the server's default,
	// when the snapshot was first stored.
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`
	// Network asks for a build with network (an address with egress);
	// the server records it, and rebuilds run with it.
	Network bool `json:"network,omitempty"`
}

// CreateBuild asks the server to build a version of dep from a stored
// snapshot; it answers at once with the queued build.
func (c *Client) CreateBuild(ctx context.Context, dep string, in BuildRequest) (*meta.Build, error) {
	var b meta.Build
	if err := c.call(ctx, http.MethodPost, depPath(dep)+"/builds", in, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// GetBuild returns one build, rebuild or restore.
func (c *Client) GetBuild(ctx context.Context, id string) (*meta.Build, error) {
	var b meta.Build
	if err := c.call(ctx, http.MethodGet, "/v1/builds/"+url.PathEscape(id), nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// ListBuilds returns dep's builds, newest first (at most 100).
func (c *Client) ListBuilds(ctx context.Context, dep string) ([]meta.Build, error) {
	out := struct {
		Builds []meta.Build `json:"builds"`
	}{}
	if err := c.call(ctx, http.MethodGet, depPath(dep)+"/builds", nil, &out); err != nil {
		return nil, err
	}
	if out.Builds == nil {
		out.Builds = []meta.Build{}
	}
	return out.Builds, nil
}

// MaxBuildLog bounds how much of a build log BuildLog reads: the server
// keeps its last meta.MaxBuildLog bytes.
const MaxBuildLog = 2 * meta.MaxBuildLog

// BuildLog returns the kept log of a build (text).
func (c *Client) BuildLog(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/builds/"+url.PathEscape(id)+"/log", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain, application/problem+json")
	var sb strings.Builder
	if err := c.do(req, &sb); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// Rebuild runs version n's recorded build again (host: only that host
// may run it; "" any); the server compares the result with the version's
// release and records the verdict.
func (c *Client) Rebuild(ctx context.Context, dep string, n int64, host string) (*meta.Build, error) {
	in := map[string]any{}
	if host != "" {
		in["host"] = host
	}
	return c.versionBuild(ctx, dep, n, "rebuild", in)
}

// Restore rebuilds collected version n; a result with the recorded sha256
// is stored again.
func (c *Client) Restore(ctx context.Context, dep string, n int64) (*meta.Build, error) {
	return c.versionBuild(ctx, dep, n, "restore", map[string]any{})
}

func (c *Client) versionBuild(ctx context.Context, dep string, n int64, action string, in any) (*meta.Build, error) {
	var b meta.Build
	if err := c.call(ctx, http.MethodPost, fmt.Sprintf("%s/versions/%d/%s", depPath(dep), n, action), in, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// SetSourceRetention sets how many days the source snapshots of dep's
// versions are kept.
func (c *Client) SetSourceRetention(ctx context.Context, dep string, days int) (*meta.Deployment, error) {
	var d meta.Deployment
	if err := c.call(ctx, http.MethodPatch, depPath(dep), map[string]int{"source_retention_days": days}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
