package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// Images makes a version of an oci deployment from an image that was
// pushed to its repository (the registry implements it).
type Images interface {
	VersionFromImage(ctx context.Context, dep *meta.Deployment, ref string, activate bool, actor string) (*meta.Version, error)
}

// createImageVersion handles POST /v1/deployments/{dep}/versions with
// {"image": "<tag or digest>"} for oci deployments.
func (a *API) createImageVersion(w http.ResponseWriter, r *http.Request, d *meta.Deployment, activate bool) error {
	if a.cfg.Images == nil {
		return problem.New(http.StatusNotImplemented, "registry-off", "the OCI registry is not available on this server")
	}
	if !looksJSON(r) {
		return problem.New(http.StatusUnsupportedMediaType, "wrong-kind", fmt.Sprintf(
			`deployment %s is of kind oci: push an image to /v2/%s, then make a version with the JSON body {"image": "<tag or digest>"}; directories and tar files are published to static deployments`,
			d.Name, d.Name))
	}
	var in struct {
		Image string `json:"image"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Image == "" {
		return badRequest(`oci deployments take {"image": "<tag or digest>"} of an image pushed to /v2/%s`, d.Name)
	}
	v, err := a.cfg.Images.VersionFromImage(r.Context(), d, in.Image, activate, actorOf(r))
	if err != nil {
		return err
	}
	a.cfg.Changed()
	w.Header().Set("Location", fmt.Sprintf("/v1/deployments/%s/versions/%d", d.Name, v.VersionNumber))
	return writeJSON(w, http.StatusCreated, v)
}

// AnonymousPull is implemented by a registry whose pulls can be opened to
// anyone, per deployment.
type AnonymousPull interface {
	SetAnonymousPull(ctx context.Context, dep *meta.Deployment, allow bool) error
}

func (a *API) setAnonymousPull(r *http.Request, d *meta.Deployment, allow bool) error {
	ap, ok := a.cfg.Images.(AnonymousPull)
	if d.Kind != meta.KindOCI || !ok {
		return badRequest("anonymous_pull applies to oci deployments served by the registry")
	}
	if err := ap.SetAnonymousPull(r.Context(), d, allow); err != nil {
		return err
	}
	a.cfg.Changed()
	return nil
}

// looksJSON reports whether r's body may be a JSON object: not declared
// as a tar or other archive, and starting with '{' after white space. It
// puts the bytes it peeked back in front of the body.
func looksJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-tar", "application/gzip", "application/x-gzip", "application/zstd", "application/octet-stream":
		return false
	}
	br := bufio.NewReaderSize(r.Body, 512)
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	b, _ := br.Peek(512)
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' || len(t) == 0 && len(b) < 512
}

// ActivateOnPush is implemented by a registry whose deployments may name
// the tag whose push activates (meta.Deployment.ActivateOnPush).
type ActivateOnPush interface {
	SetActivateOnPush(ctx context.Context, dep *meta.Deployment, tag, actor string) (*meta.Deployment, error)
}

func (a *API) setActivateOnPush(r *http.Request, d *meta.Deployment, tag string) (*meta.Deployment, error) {
	ap, ok := a.cfg.Images.(ActivateOnPush)
	if d.Kind != meta.KindOCI || !ok {
		return nil, badRequest("activate_on_push applies to oci deployments served by the registry")
	}
	return ap.SetActivateOnPush(r.Context(), d, tag, actorOf(r))
}
