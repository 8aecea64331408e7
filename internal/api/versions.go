package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/publish"
)

// createVersion publishes a version. With ?create=true a missing {dep}
// (a name) is created, kind static, in the same transaction as the version:
// a publish that fails leaves no deployment behind.
func (a *API) createVersion(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var err error
	activate, create := true, false
	if s := q.Get("activate"); s != "" {
		if activate, err = strconv.ParseBool(s); err != nil {
			return badRequest("activate must be true or false")
		}
	}
	if s := q.Get("create"); s != "" {
		if create, err = strconv.ParseBool(s); err != nil {
			return badRequest("create must be true or false")
		}
	}
	d, err := a.deployment(r)
	isNew := false
	if err != nil && create && problem.From(err).Status == http.StatusNotFound {
		name := r.PathValue("dep")
		if err := checkName(name); err != nil {
			return err
		}
		kind := meta.KindStatic
		if k := q.Get("kind"); k != "" {
			if k != meta.KindStatic && k != meta.KindRootfs {
				return badRequest("kind %q: a publish creates a static or rootfs deployment", k)
			}
			kind = k
		}
		d, err, isNew = &meta.Deployment{Name: name, Kind: kind, RetentionDays: a.defaultRetention()}, nil, true
	}
	if err != nil {
		return err
	}
	if d.Kind == meta.KindOCI {
		return a.createImageVersion(w, r, d, activate)
	}
	var rt *meta.Runtime
	if q.Has("runtime") || d.Kind == meta.KindRootfs {
		if rt, err = publish.ParseRuntime([]byte(q.Get("runtime"))); err != nil {
			return err
		}
	}
	if s := q.Get("sha256"); s != "" && !isHexSHA256(s) {
		return badRequest("sha256 %q is not 64 lowercase hex digits", s)
	}
	// A dynamic deployment with instances rolls to the new version rather
	// than moving its pointer under the running instances.
	roll := false
	if activate && !isNew && rt != nil {
		if roll, err = a.rolls(r.Context(), d, &meta.Version{Runtime: rt}); err != nil {
			return err
		}
	}
	source, err := a.sourceParam(r, d.Name)
	if err != nil {
		return err
	}
	httplimit.Upload(r) // its deadline is renewed while bytes arrive
	v, err := a.cfg.Publisher.Publish(r.Context(), d, r.Body, publish.Options{
		SourceSHA256:   source,
		SourceSnapshot: source != "",
		Entrypoint:     q.Get("entrypoint"),
		Activate:       activate && !roll,
		Actor:          actorOf(r),
		Create:         isNew,
		// ?sha256= (cairn publish FILE.tar.zst): the release must repack
		// to exactly this.
		ExpectSHA256: q.Get("sha256"),
		Runtime:      rt,
	})
	if isNew && errors.Is(err, meta.ErrConflict) {
		return problem.New(http.StatusConflict, "conflict", "deployment "+d.Name+" was created meanwhile; publish again")
	}
	if err != nil {
		return err
	}
	if roll {
		timeout := a.cfg.RolloutTimeout
		if timeout <= 0 {
			timeout = DefaultRolloutTimeout
		}
		ro, err := a.cfg.Sched.StartRollout(r.Context(), meta.NewRollout{DeploymentID: d.ID, VersionNumber: v.VersionNumber,
			Action: meta.ActionActivate, Deadline: a.now().Add(timeout), Actor: actorOf(r)})
		if err != nil {
			return err
		}
		a.kick()
		// The version is published; its rollout is under way.
		w.Header().Set("Cairn-Rollout", fmt.Sprintf("/v1/deployments/%s/rollouts/%s", d.Name, ro.ID))
	}
	a.cfg.Changed()
	w.Header().Set("Location", fmt.Sprintf("/v1/deployments/%s/versions/%d", d.Name, v.VersionNumber))
	return writeJSON(w, http.StatusCreated, a.withVersionURLs(d, v))
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, before := 20, int64(0)
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 100 {
			return badRequest("limit must be an integer from 1 to 100")
		}
	}
	if s := q.Get("cursor"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			return badRequest("cursor %q is not valid", s)
		}
	}
	vs, err := a.cfg.Meta.ListVersions(r.Context(), d.ID, limit+1, before)
	if err != nil {
		return err
	}
	next := ""
	if len(vs) > limit {
		vs = vs[:limit]
		next = strconv.FormatInt(vs[limit-1].VersionNumber, 10)
	}
	if vs == nil {
		vs = []meta.Version{}
	}
	for i := range vs {
		a.withVersionURLs(d, &vs[i])
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": vs, "next_cursor": next})
}

// sourceParam is ?source_sha256=, which must name a source snapshot that
// deployment dep (a name) uploaded ("" without one): the version records
// it as its source.
func (a *API) sourceParam(r *http.Request, dep string) (string, error) {
	sha := r.URL.Query().Get("source_sha256")
	if sha == "" {
		return "", nil
	}
	if _, err := a.builds(); err != nil {
		return "", err
	}
	if _, err := a.snapshot(r.Context(), dep, sha); err != nil {
		return "", badRequest("source_sha256: %s", problem.From(err).Detail)
	}
	return sha, nil
}

// versionNumber parses the {n} path value.
func versionNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("version number %q must be a positive integer", s)
	}
	return n, nil
}

func (a *API) versionOf(r *http.Request, d *meta.Deployment, n int64) (*meta.Version, error) {
	v, err := a.cfg.Meta.GetVersionByNumber(r.Context(), d.ID, n)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("deployment %s has no version %d", d.Name, n)
	}
	return v, err
}

func (a *API) getVersionByNumber(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	n, err := versionNumber(r.PathValue("n"))
	if err != nil {
		return err
	}
	v, err := a.versionOf(r, d, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.withVersionURLs(d, v))
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := a.cfg.Meta.GetVersion(r.Context(), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) {
		return notFound("version %q not found", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	if v, err = a.versionURLs(r.Context(), v); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// gone is the 410 answer for a collected version.
func gone(v *meta.Version) error {
	p := problem.New(http.StatusGone, "version-collected",
		fmt.Sprintf("version %d was garbage collected; its release bytes are gone", v.VersionNumber))
	p.Extra = map[string]any{"version_number": v.VersionNumber, "artifact_sha256": v.ArtifactSHA256, "collected_at": v.CollectedAt}
	return p
}

// pointBody is the body of activate and rollback: rollout_timeout bounds
// the rolling replacement of a dynamic deployment (default
// --rollout-timeout).
type pointBody struct {
	VersionNumber  *int64 `json:"version_number"`
	RolloutTimeout string `json:"rollout_timeout,omitempty"`
}

func (in pointBody) timeout() (time.Duration, error) {
	if in.RolloutTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(in.RolloutTimeout)
	if err != nil || d <= 0 || d > 24*time.Hour {
		return 0, badRequest("rollout_timeout %q must be a duration such as 2m (at most 24h)", in.RolloutTimeout)
	}
	return d, nil
}

func (a *API) activate(w http.ResponseWriter, r *http.Request) error {
	var in pointBody
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.VersionNumber == nil {
		return badRequest("version_number is required")
	}
	return a.pointTo(w, r, *in.VersionNumber, "activate", in)
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	var in pointBody
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if in.VersionNumber != nil {
		return a.pointTo(w, r, *in.VersionNumber, "rollback", in)
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	prev, err := a.cfg.Meta.PreviousActive(r.Context(), d.ID)
	if errors.Is(err, meta.ErrNotFound) {
		return problem.New(http.StatusConflict, "no-previous-version", "deployment "+d.Name+" has no previously active version to roll back to")
	}
	if err != nil {
		return err
	}
	return a.pointTo(w, r, prev.VersionNumber, "rollback", in)
}

// pointTo makes version n active: a pointer move, or for a dynamic
// deployment with instances a rollout (202) that the scheduler drives.
func (a *API) pointTo(w http.ResponseWriter, r *http.Request, n int64, action string, in pointBody) error {
	timeout, err := in.timeout()
	if err != nil {
		return err
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	v, err := a.versionOf(r, d, n)
	if err != nil {
		return err
	}
	if roll, err := a.rolls(r.Context(), d, v); err != nil {
		return err
	} else if roll {
		return a.startRollout(w, r, d, v, action, timeout)
	}
	d, err = a.cfg.Meta.Activate(r.Context(), d.ID, n, actorOf(r), action)
	if errors.Is(err, meta.ErrGone) {
		return a.collected(r, v)
	}
	if err != nil {
		return err
	}
	a.cfg.Changed()
	if d, err = a.present(r.Context(), d); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// isHexSHA256 reports whether s is 64 lowercase hex digits.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
