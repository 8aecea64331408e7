package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

// Incremental publishes (issue 17): the client sends the tree's manifest,
// the server answers the contents it lacks, the client uploads those
// (zstd-compressed), then commits; the release is the cold pack's.

// startPublish: POST /v1/deployments/{dep}/publishes, body a manifest
// (JSON, plain or zstd). Answers 201 {"id", "missing": [sha256…]}.
func (a *API) startPublish(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	if d.Kind != meta.KindStatic {
		return problem.New(http.StatusBadRequest, "wrong-kind", fmt.Sprintf("deployment %q has kind %q; incremental publishes make static releases", d.Name, d.Kind))
	}
	a.publishes.Sweep() // abandoned publishes expire, their parts go
	httplimit.Upload(r)
	body, err := release.Decompress(r.Body)
	if err != nil {
		return err
	}
	defer body.Close()
	m, err := publish.ParseManifest(body, a.cfg.Publisher.Limits)
	if err != nil {
		return err
	}
	inc, err := a.cfg.Publisher.StartIncrementalTo(r.Context(), d, m)
	if err != nil {
		return err
	}
	id := a.publishes.Add(d.ID, inc)
	missing := inc.Missing
	if missing == nil {
		missing = []string{}
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"id": id, "missing": missing})
}

// putContent: PUT …/publishes/{id}/contents/{sha}, body the content
// (zstd or plain). A body that is not that content: 422.
func (a *API) putContent(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	inc, done, err := a.publishes.Get(r.PathValue("id"), d.ID)
	if err != nil {
		return err
	}
	defer done()
	httplimit.Upload(r)
	if err := inc.PutContent(r.Context(), r.PathValue("sha"), r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commitPublish: POST …/publishes/{id}/commit[?activate=&entrypoint=]
// assembles and publishes the release; answers 201 and the version, as
// POST …/versions does. The publish ends either way.
func (a *API) commitPublish(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	activate := true
	if s := q.Get("activate"); s != "" {
		if activate, err = strconv.ParseBool(s); err != nil {
			return badRequest("activate must be true or false")
		}
	}
	switch q.Get("as") {
	case "", "version":
	case "source":
		return a.commitSource(w, r, d)
	default:
		return badRequest("as must be version or source")
	}
	source, err := a.sourceParam(r, d.Name)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	inc, done, err := a.publishes.Get(id, d.ID)
	if err != nil {
		return err
	}
	v, err := a.cfg.Publisher.Assemble(r.Context(), d, inc, publish.Options{
		Entrypoint: q.Get("entrypoint"), Activate: activate, Actor: actorOf(r),
		SourceSHA256: source, SourceSnapshot: source != ""})
	done()
	if problem.From(err).Status != http.StatusConflict { // contents-missing: the client may send them and commit again
		a.publishes.Remove(id)
	}
	if err != nil {
		return err
	}
	a.cfg.Changed()
	w.Header().Set("Location", fmt.Sprintf("/v1/deployments/%s/versions/%d", d.Name, v.VersionNumber))
	return writeJSON(w, http.StatusCreated, a.withVersionURLs(d, v))
}

// abandonPublish: DELETE …/publishes/{id} ends a publish and removes its
// parts.
func (a *API) abandonPublish(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, done, err := a.publishes.Get(id, d.ID); err != nil {
		return err
	} else {
		done()
	}
	a.publishes.Remove(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commitSource ends an incremental publish as a source snapshot of d
// (?as=source&sha256=): its tree, assembled from the contents sent and
// the frames stored releases hold, must pack to sha256.
func (a *API) commitSource(w http.ResponseWriter, r *http.Request, d *meta.Deployment) error {
	bs, err := a.builds()
	if err != nil {
		return err
	}
	sha := r.URL.Query().Get("sha256")
	if !isHexSHA256(sha) {
		return badRequest("sha256 %q: a snapshot commit names the sha256 its tree packs to", sha)
	}
	id := r.PathValue("id")
	inc, done, err := a.publishes.Get(id, d.ID)
	if err != nil {
		return err
	}
	rel, err := a.cfg.Publisher.AssembleSource(r.Context(), inc, sha, func(ctx context.Context, rel meta.Release) (*meta.Release, error) {
		return bs.PutSourceRelease(ctx, d.Name, rel)
	})
	done()
	if problem.From(err).Status != http.StatusConflict { // contents-missing: the client may send them and commit again
		a.publishes.Remove(id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sourceOf(rel))
}
