package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/publish"
)

// Sources, builds and rebuilds (docs/design.md, "Sources, builds and
// rebuilds").

func (a *API) buildRoutes() {
	a.handle("PUT /v1/deployments/{dep}/sources/{sha}", needDeploy, a.putSource)
	a.handle("GET /v1/deployments/{dep}/sources/{sha}", needReadDeployment, a.getSource)
	a.handle("POST /v1/deployments/{dep}/builds", needDeploy, a.createBuild)
	a.handle("GET /v1/deployments/{dep}/builds", needReadDeployment, a.listBuilds)
	a.handle("GET /v1/builds/{id}", needReadBuild, a.getBuild)
	a.handle("GET /v1/builds/{id}/log", needReadBuild, a.buildLog)
	a.handle("POST /v1/deployments/{dep}/versions/{n}/rebuild", needDeploy, a.rebuild)
	a.handle("POST /v1/deployments/{dep}/versions/{n}/restore", needDeploy, a.restore)
	a.handle("POST /v1/hosts/{id}/builds/claim", needAgent, a.claimBuild)
	a.handle("POST /v1/hosts/{id}/builds/{bid}/result", needAgent, a.buildResult)
}

// Bounds of a build request.
const (
	DefaultBuildTimeout = 10 * time.Minute
	MaxBuildTimeout     = time.Hour
	DefaultBuildMemory  = 1 << 30
	minBuildMemory      = 64 << 20
	maxBuildMemory      = 16 << 30
	maxBuildCommand     = 4096
	maxBuildEnv         = 64
	buildPids           = 4096
	buildCPU            = 2
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// reservedEnv are the variables a build's environment fixes.
var reservedEnv = map[string]bool{"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "TZ": true, "SOURCE_DATE_EPOCH": true}

func (a *API) builds() (meta.Builds, error) {
	if a.cfg.Builds == nil {
		return nil, problem.New(http.StatusNotImplemented, "builds-off", "this server keeps no builds")
	}
	return a.cfg.Builds, nil
}

// Source is a stored snapshot as the API shows it: never its URI.
type Source struct {
	SHA256     string    `json:"sha256"`
	Kind       string    `json:"kind"`
	SizeBytes  int64     `json:"size_bytes"`
	TreeSHA256 string    `json:"tree_sha256"`
	CreatedAt  time.Time `json:"created_at"`
}

func sourceOf(rel *meta.Release) *Source {
	return &Source{SHA256: rel.SHA256, Kind: rel.Kind, SizeBytes: rel.SizeBytes, TreeSHA256: rel.TreeSHA256, CreatedAt: rel.CreatedAt}
}

// snapshot finds a stored, uncollected snapshot that deployment dep (a
// name) uploaded. Snapshots are global bytes, but a deployment names only
// those it uploaded: a digest learnt elsewhere gives nothing.
func (a *API) snapshot(ctx context.Context, dep, sha string) (*meta.Release, error) {
	if !isHexSHA256(sha) {
		return nil, badRequest("source sha256 %q is not 64 lowercase hex digits", sha)
	}
	missing := notFound("deployment %s has no source snapshot %s: upload it (PUT /v1/deployments/%s/sources/%s)", dep, sha, dep, sha)
	owned, err := a.cfg.Builds.SourceOwned(ctx, dep, sha)
	if err != nil {
		return nil, err
	}
	if !owned {
		return nil, missing
	}
	rel, err := a.cfg.Meta.GetRelease(ctx, sha)
	if errors.Is(err, meta.ErrNotFound) || err == nil && (rel.CollectedAt != nil ||
		rel.Kind != meta.KindSource && rel.Kind != meta.KindStatic || rel.TreeSHA256 == "") {
		return nil, missing
	}
	return rel, err
}

// depName is the name of the {dep} of r: the stored deployment's, or the
// path's (a deployment a build will create).
func (a *API) depName(r *http.Request) string {
	if d, err := a.cfg.Meta.GetDeployment(r.Context(), r.PathValue("dep")); err == nil {
		return d.Name
	}
	return r.PathValue("dep")
}

func (a *API) putSource(w http.ResponseWriter, r *http.Request) error {
	bs, err := a.builds()
	if err != nil {
		return err
	}
	sha := r.PathValue("sha")
	if !isHexSHA256(sha) {
		return badRequest("sha256 %q is not 64 lowercase hex digits", sha)
	}
	dep := a.depName(r)
	if err := checkName(dep); err != nil {
		return err
	}
	if rel, err := a.snapshot(r.Context(), dep, sha); err == nil {
		return writeJSON(w, http.StatusOK, sourceOf(rel))
	}
	// Not this deployment's yet: the bytes prove the uploader has them.
	httplimit.Upload(r)
	rel, err := a.cfg.Publisher.StoreSource(r.Context(), r.Body, sha, func(ctx context.Context, rel meta.Release) (*meta.Release, error) {
		return bs.PutSourceRelease(ctx, dep, rel)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sourceOf(rel))
}

func (a *API) getSource(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.builds(); err != nil {
		return err
	}
	rel, err := a.snapshot(r.Context(), a.depName(r), r.PathValue("sha"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sourceOf(rel))
}

// BuildRequest is the body of POST /v1/deployments/{dep}/builds.
type BuildRequest struct {
	SourceSHA256 string            `json:"source_sha256"`
	Builder      string            `json:"builder"` // NAME:N or sha256:HEX
	Command      string            `json:"command"`
	Output       string            `json:"output"`
	Env          map[string]string `json:"env"`
	Timeout      string            `json:"timeout"`
	MemoryBytes  int64             `json:"memory_bytes"`
	Entrypoint   string            `json:"entrypoint"`
	Activate     *bool             `json:"activate"`
	Create       bool              `json:"create"`
	Host         string            `json:"host"`
	// SourceDateEpoch (seconds) is the build's SOURCE_DATE_EPOCH, such as
	// the time of the source's last commit; absent, when the snapshot was
	// first stored.
	SourceDateEpoch *int64 `json:"source_date_epoch"`
	// Network asks for a build with network (an address on the host's
	// bridge and egress); recorded, so rebuilds and restores run with it.
	Network bool `json:"network"`
}

// maxEpochAhead is how far past the server's clock a given
// source_date_epoch may lie (a client clock a little ahead).
const maxEpochAhead = 24 * time.Hour

// checkOutput refuses an output directory that is not a clean relative
// path inside the source tree.
func checkOutput(o string) error {
	if o == "." {
		return nil
	}
	if o == "" || strings.HasPrefix(o, "/") || path.Clean(o) != o || o == ".." || strings.HasPrefix(o, "../") ||
		strings.ContainsRune(o, 0) || len(o) > 1024 {
		return badRequest("output %q must be a clean relative directory of the source tree", o)
	}
	return nil
}

func (a *API) createBuild(w http.ResponseWriter, r *http.Request) error {
	bs, err := a.builds()
	if err != nil {
		return err
	}
	var in BuildRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	name := r.PathValue("dep")
	d, err := a.deployment(r)
	switch {
	case err != nil && in.Create && problem.From(err).Status == http.StatusNotFound:
		if err := checkName(name); err != nil {
			return err
		}
	case err != nil:
		return err
	case d.Kind != meta.KindStatic:
		return problem.New(http.StatusBadRequest, "wrong-kind",
			fmt.Sprintf("deployment %q has kind %s: a build makes a static release", d.Name, d.Kind))
	default:
		name = d.Name
	}
	src, err := a.snapshot(r.Context(), name, in.SourceSHA256)
	if err != nil {
		return err
	}
	if err := a.checkPin(r.Context(), in.Host); err != nil {
		return err
	}
	if err := a.checkActiveBuilds(r.Context(), name); err != nil {
		return err
	}
	spec := meta.BuildSpec{SourceSHA256: src.SHA256, SourceTree: src.TreeSHA256, Command: in.Command, Output: in.Output,
		Env: in.Env, Timeout: in.Timeout, MemoryBytes: in.MemoryBytes, Entrypoint: in.Entrypoint, Activate: true,
		SourceDateEpoch: src.CreatedAt.Unix(), Network: in.Network}
	if in.Activate != nil {
		spec.Activate = *in.Activate
	}
	if e := in.SourceDateEpoch; e != nil {
		if limit := a.now().Add(maxEpochAhead).Unix(); *e <= 0 || *e > limit {
			return badRequest("source_date_epoch %d: give seconds since 1970 from 1 to %d (a day past the server's clock)", *e, limit)
		}
		spec.SourceDateEpoch = *e
	}
	if err := checkBuildSpec(&spec); err != nil {
		return err
	}
	if err := a.resolveBuilder(r, in.Builder, &spec); err != nil {
		return err
	}
	b := &meta.Build{Deployment: name, Kind: meta.BuildKindBuild, PinHost: in.Host, BuildSpec: spec, Actor: actorOf(r)}
	if err := bs.CreateBuild(r.Context(), b); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/builds/"+b.ID)
	return writeJSON(w, http.StatusAccepted, b)
}

// MaxActiveBuilds bounds the builds of one deployment that are queued,
// running or finishing at once: one token cannot fill every host's queue.
const MaxActiveBuilds = 8

func (a *API) checkActiveBuilds(ctx context.Context, dep string) error {
	list, err := a.cfg.Builds.ListBuilds(ctx, dep, 100)
	if err != nil {
		return err
	}
	n := 0
	for _, b := range list {
		if b.State == meta.BuildQueued || b.State == meta.BuildRunning || b.State == meta.BuildFinishing {
			n++
		}
	}
	if n >= MaxActiveBuilds {
		return problem.New(http.StatusTooManyRequests, "too-many-builds",
			fmt.Sprintf("deployment %s has %d builds queued or running (at most %d): wait for one to end", dep, n, MaxActiveBuilds))
	}
	return nil
}

// checkPin refuses a pin to a host that cannot run builds: unknown, not
// ready, or not a container host.
func (a *API) checkPin(ctx context.Context, host string) error {
	if host == "" {
		return nil
	}
	if a.cfg.Hosts == nil {
		return badRequest("host %q: this server keeps no hosts", host)
	}
	h, err := a.cfg.Hosts.GetHost(ctx, host)
	if errors.Is(err, meta.ErrNotFound) {
		return badRequest("host %q: no such host", host)
	}
	if err != nil {
		return err
	}
	if h.State != hostapi.HostReady || h.Isolation != hostapi.IsolationContainer {
		return badRequest("host %s is %s with %s isolation: builds run on ready container hosts", host, h.State, h.Isolation)
	}
	return nil
}

// checkBuildSpec checks and completes the command, output, env, timeout,
// memory and entrypoint of a build.
func checkBuildSpec(s *meta.BuildSpec) error {
	if strings.TrimSpace(s.Command) == "" || len(s.Command) > maxBuildCommand || strings.ContainsRune(s.Command, 0) {
		return badRequest("command: give a shell command of at most %d bytes", maxBuildCommand)
	}
	if s.Output == "" {
		s.Output = "dist"
	}
	if err := checkOutput(s.Output); err != nil {
		return err
	}
	if len(s.Env) > maxBuildEnv {
		return badRequest("env: at most %d variables", maxBuildEnv)
	}
	for k, v := range s.Env {
		if !envNameRE.MatchString(k) || reservedEnv[k] {
			return badRequest("env: %q is not a variable a build may set (names [A-Za-z_][A-Za-z0-9_]*, not PATH, HOME, LANG, LC_ALL, TZ or SOURCE_DATE_EPOCH)", k)
		}
		if len(v) > 4096 || strings.ContainsRune(v, 0) {
			return badRequest("env: the value of %s is longer than 4096 bytes or holds a NUL", k)
		}
	}
	timeout := DefaultBuildTimeout
	if s.Timeout != "" {
		t, err := time.ParseDuration(s.Timeout)
		if err != nil || t <= 0 || t > MaxBuildTimeout {
			return badRequest("timeout %q: give a duration from 1s to %v", s.Timeout, MaxBuildTimeout)
		}
		timeout = t
	}
	s.Timeout = timeout.String()
	if s.MemoryBytes == 0 {
		s.MemoryBytes = DefaultBuildMemory
	}
	if s.MemoryBytes < minBuildMemory || s.MemoryBytes > maxBuildMemory {
		return badRequest("memory_bytes: from %d (64 MiB) to %d (16 GiB)", minBuildMemory, int64(maxBuildMemory))
	}
	if s.Entrypoint != "" {
		if err := checkOutput(s.Entrypoint); err != nil || s.Entrypoint == "." {
			return badRequest("entrypoint %q is not a relative path", s.Entrypoint)
		}
	}
	return nil
}

// resolveBuilder pins the builder ref ("NAME:N" or "sha256:HEX") to a
// rootfs release and its tree digest. A NAME:N builder must be readable
// by the caller.
func (a *API) resolveBuilder(r *http.Request, ref string, s *meta.BuildSpec) error {
	ctx := r.Context()
	s.BuilderRef = ref
	if hexSHA, ok := strings.CutPrefix(ref, "sha256:"); ok {
		// A digest names no deployment whose scope could be checked.
		if p := principal(r); !p.ReadsAll() {
			return forbidden(p, "read or admin (a builder given by digest; give NAME:N to use a deployment this token reads)")
		}
		rel, err := a.cfg.Meta.GetRelease(ctx, hexSHA)
		if errors.Is(err, meta.ErrNotFound) || err == nil && (rel.Kind != meta.KindRootfs || rel.CollectedAt != nil) {
			return badRequest("builder %s: no stored rootfs release has that digest", ref)
		}
		if err != nil {
			return err
		}
		s.Builder, s.BuilderTree = rel.SHA256, rel.TreeSHA256
		return nil
	}
	name, num, ok := strings.Cut(ref, ":")
	if !ok || name == "" {
		return badRequest("builder %q: give NAME:N (version N of a rootfs or oci deployment) or sha256:HEX", ref)
	}
	n, err := versionNumber(num)
	if err != nil {
		return badRequest("builder %q: give NAME:N (version N of a rootfs or oci deployment) or sha256:HEX", ref)
	}
	p := principal(r)
	d, err := a.cfg.Meta.GetDeployment(ctx, name)
	if err == nil && !p.Reads(d.Name) {
		return forbidden(p, scopeNeeded(needReadDeployment, d.Name)+" (of the builder)")
	}
	if errors.Is(err, meta.ErrNotFound) {
		return badRequest("builder %s: no deployment %q", ref, name)
	}
	if err != nil {
		return err
	}
	v, err := a.versionOf(r, d, n)
	if err != nil {
		return badRequest("builder %s: deployment %s has no version %d", ref, d.Name, n)
	}
	if v.CollectedAt != nil {
		return badRequest("builder %s: version %d was collected", ref, n)
	}
	switch d.Kind {
	case meta.KindRootfs:
		rel, err := a.cfg.Meta.GetRelease(ctx, v.ArtifactSHA256)
		if err != nil {
			return err
		}
		s.Builder, s.BuilderTree = rel.SHA256, rel.TreeSHA256
	case meta.KindOCI:
		rf, err := a.ociRootfs(ctx, d, v)
		if err != nil {
			return badRequest("builder %s: its image gives no rootfs", ref)
		}
		s.Builder, s.BuilderTree = rf.Release.SHA256, rf.Release.TreeSHA256
	default:
		return badRequest("builder %s: deployment %s is %s; a builder is a rootfs or oci version", ref, d.Name, d.Kind)
	}
	return nil
}

func (a *API) listBuilds(w http.ResponseWriter, r *http.Request) error {
	bs, err := a.builds()
	if err != nil {
		return err
	}
	name := r.PathValue("dep")
	if d, err := a.cfg.Meta.GetDeployment(r.Context(), name); err == nil {
		name = d.Name
	}
	list, err := bs.ListBuilds(r.Context(), name, 0)
	if err != nil {
		return err
	}
	if list == nil {
		list = []meta.Build{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"builds": list})
}

func (a *API) buildOf(r *http.Request) (*meta.Build, error) {
	bs, err := a.builds()
	if err != nil {
		return nil, err
	}
	b, err := bs.GetBuild(r.Context(), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("build %q not found", r.PathValue("id"))
	}
	return b, err
}

func (a *API) getBuild(w http.ResponseWriter, r *http.Request) error {
	b, err := a.buildOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (a *API) buildLog(w http.ResponseWriter, r *http.Request) error {
	b, err := a.buildOf(r)
	if err != nil {
		return err
	}
	l, err := a.cfg.Builds.BuildLog(r.Context(), b.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = io.WriteString(w, l)
	return err
}

// rebuild and restore run version n's recorded build again.
func (a *API) rebuild(w http.ResponseWriter, r *http.Request) error {
	return a.again(w, r, meta.BuildKindRebuild)
}

func (a *API) restore(w http.ResponseWriter, r *http.Request) error {
	return a.again(w, r, meta.BuildKindRestore)
}

func (a *API) again(w http.ResponseWriter, r *http.Request, kind string) error {
	bs, err := a.builds()
	if err != nil {
		return err
	}
	var in struct {
		Host string `json:"host"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
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
	if v.Build == nil || !v.SourceSnapshot {
		return problem.New(http.StatusConflict, "not-built",
			fmt.Sprintf("version %d of %s was not built on the platform: there is no recorded build to run again", n, d.Name))
	}
	if kind == meta.BuildKindRestore && v.CollectedAt == nil {
		return problem.New(http.StatusConflict, "not-collected",
			fmt.Sprintf("version %d of %s is not collected: its release is stored (rebuild it to check it)", n, d.Name))
	}
	src, err := a.snapshot(r.Context(), d.Name, v.SourceSHA256)
	if err != nil {
		if problem.From(err).Status == http.StatusNotFound {
			return problem.New(http.StatusGone, "source-collected",
				fmt.Sprintf("the source snapshot of version %d of %s is no longer stored", n, d.Name))
		}
		return err
	}
	builder, err := a.cfg.Meta.GetRelease(r.Context(), v.Build.Builder)
	if errors.Is(err, meta.ErrNotFound) || err == nil && builder.CollectedAt != nil {
		return problem.New(http.StatusGone, "builder-collected",
			fmt.Sprintf("the builder %s of version %d of %s is no longer stored", v.Build.Builder, n, d.Name))
	}
	if err != nil {
		return err
	}
	if err := a.checkPin(r.Context(), in.Host); err != nil {
		return err
	}
	if err := a.checkActiveBuilds(r.Context(), d.Name); err != nil {
		return err
	}
	timeout, memory := v.Build.Timeout, v.Build.MemoryBytes
	if timeout == "" {
		timeout = MaxBuildTimeout.String()
	}
	if memory == 0 {
		memory = DefaultBuildMemory
	}
	b := &meta.Build{Deployment: d.Name, Kind: kind, VersionNumber: n, PinHost: in.Host, Actor: actorOf(r),
		BuildSpec: meta.BuildSpec{SourceSHA256: src.SHA256, SourceTree: src.TreeSHA256, Builder: builder.SHA256,
			BuilderTree: builder.TreeSHA256, BuilderRef: v.Build.BuilderRef, Command: v.Build.Command, Output: v.Build.Output,
			Env: v.Build.Env, SourceDateEpoch: v.Build.SourceDateEpoch, Timeout: timeout, MemoryBytes: memory,
			Entrypoint: v.ArtifactManifest.Entrypoint, Network: v.Build.Network}}
	if err := bs.CreateBuild(r.Context(), b); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/builds/"+b.ID)
	return writeJSON(w, http.StatusAccepted, b)
}

// buildHost is the builds store and the {id} host of an agent's build
// call (the agent token that registered it, or admin).
func (a *API) buildHost(r *http.Request) (meta.Builds, *meta.Host, error) {
	bs, err := a.builds()
	if err != nil {
		return nil, nil, err
	}
	hs, err := a.hosts()
	if err != nil {
		return nil, nil, err
	}
	h, err := a.agentHost(r, hs)
	return bs, h, err
}

// claimBuild gives a queued build to the calling agent's host, waiting
// up to ?wait for one.
func (a *API) claimBuild(w http.ResponseWriter, r *http.Request) error {
	bs, h, err := a.buildHost(r)
	if err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		b, err := bs.ClaimBuild(r.Context(), h.ID)
		if err == nil {
			return writeJSON(w, http.StatusOK, hostBuild(b))
		}
		if !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if !time.Now().Before(deadline) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// hostBuild is what a host runs of build b.
func hostBuild(b *meta.Build) hostapi.Build {
	return hostapi.Build{ID: b.ID, Builder: b.Builder, BuilderTree: b.BuilderTree, Source: b.SourceSHA256,
		SourceTree: b.SourceTree, Command: b.Command, Output: b.Output, Env: b.Env, SourceDateEpoch: b.SourceDateEpoch,
		Timeout: b.Timeout, Limits: hostapi.Limits{CPU: buildCPU, MemoryBytes: b.MemoryBytes, Pids: buildPids}, Network: b.Network}
}

// maxBuildLogUpload bounds the log part of a result: an agent sends the
// last meta.MaxBuildLog bytes.
const maxBuildLogUpload = meta.MaxBuildLog + 4096

// buildResult takes a host's result of a build it claimed: the artifact
// is verified as every upload is, then becomes a version (build), a
// verdict (rebuild) or a restored release (restore).
func (a *API) buildResult(w http.ResponseWriter, r *http.Request) error {
	bs, h, err := a.buildHost(r)
	if err != nil {
		return err
	}
	b, err := bs.GetBuild(r.Context(), r.PathValue("bid"))
	if errors.Is(err, meta.ErrNotFound) {
		return notFound("build %q not found", r.PathValue("bid"))
	}
	if err != nil {
		return err
	}
	if b.State != meta.BuildRunning || b.Host != h.ID {
		return problem.New(http.StatusConflict, "conflict", fmt.Sprintf("build %s is not running on host %s", b.ID, h.ID))
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("the body must be multipart/form-data with parts result, log and artifact")
	}
	// One delivery of a result is taken: a second (an agent retrying
	// after a lost answer) gets 409 and can publish nothing twice.
	if b, err = bs.StartFinishing(r.Context(), b.ID, h.ID); errors.Is(err, meta.ErrConflict) {
		return problem.New(http.StatusConflict, "conflict", fmt.Sprintf("build %s is not running on host %s", r.PathValue("bid"), h.ID))
	} else if err != nil {
		return err
	}
	// From here the build ends whatever the client does: a request that
	// goes away must not leave it finishing with its version made.
	ctx := context.WithoutCancel(r.Context())
	r = r.WithContext(ctx)
	bad := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if _, err := bs.FinishBuild(ctx, b.ID, h.ID, meta.BuildEnd{State: meta.BuildFailed, Error: "the host's result was malformed: " + msg}); err != nil {
			a.log.Warn("failing a build with a malformed result", "build", b.ID, "err", err)
		}
		return badRequest("%s", msg)
	}
	httplimit.Upload(r)
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "result" {
		return bad("the first part must be result (JSON)")
	}
	var res hostapi.BuildResult
	if err := json.NewDecoder(io.LimitReader(part, 64<<10)).Decode(&res); err != nil {
		return bad("result: invalid JSON")
	}
	end := meta.BuildEnd{State: meta.BuildFailed, DurationMS: res.DurationMS, Error: res.Error}
	if res.ExitCode >= 0 || res.Error == "" {
		end.ExitCode = new(res.ExitCode)
	}
	part, err = mr.NextPart()
	if err != nil || part.FormName() != "log" {
		return bad("the second part must be log")
	}
	logBytes, err := io.ReadAll(io.LimitReader(part, maxBuildLogUpload+1))
	if err != nil {
		return bad("log: the body ended early")
	}
	if len(logBytes) > maxBuildLogUpload {
		return bad("log: at most its last %d bytes", meta.MaxBuildLog)
	}
	end.Log = string(logBytes)
	sum := sha256.Sum256(logBytes)
	end.LogSHA256, end.LogBytes = hex.EncodeToString(sum[:]), int64(len(logBytes))
	var artifact io.Reader
	if res.Error == "" && res.ExitCode == 0 {
		if part, err = mr.NextPart(); err != nil || part.FormName() != "artifact" {
			end.Error = "the host sent no output"
		} else {
			artifact = part
		}
	} else if end.Error == "" {
		end.Error = fmt.Sprintf("the command exited with status %d", res.ExitCode)
	}
	if artifact != nil {
		a.finishOutput(r, b, res, artifact, &end)
	}
	done, err := bs.FinishBuild(ctx, b.ID, h.ID, end)
	if err != nil {
		return err
	}
	a.log.Info("build ended", "build", done.ID, "kind", done.Kind, "deployment", done.Deployment, "state", done.State,
		"error", done.Error, "duration_ms", done.DurationMS)
	return writeJSON(w, http.StatusOK, done)
}

// finishOutput makes what a succeeded build's artifact becomes, and sets
// end's state, sha256, verdict or error.
func (a *API) finishOutput(r *http.Request, b *meta.Build, res hostapi.BuildResult, artifact io.Reader, end *meta.BuildEnd) {
	ctx := r.Context()
	fail := func(what string, err error) {
		p := problem.From(err)
		if p.Status >= 500 {
			a.log.Error("build output", "build", b.ID, "err", err)
			end.Error = what + ": internal error; see the server log"
			return
		}
		end.Error = what + ": " + p.Detail
	}
	if b.Kind == meta.BuildKindBuild {
		v, err := a.buildVersion(r, b, res, artifact, end)
		if err != nil {
			fail("the build's output was refused", err)
			return
		}
		end.State, end.ArtifactSHA256 = meta.BuildSucceeded, v.ArtifactSHA256
		return
	}
	d, err := a.cfg.Meta.GetDeployment(ctx, b.Deployment)
	if err != nil {
		fail("its deployment", err)
		return
	}
	v, err := a.cfg.Meta.GetVersionByNumber(ctx, d.ID, b.VersionNumber)
	if err != nil {
		fail("its version", err)
		return
	}
	ver, err := a.cfg.Publisher.Verify(ctx, artifact)
	if err != nil {
		fail("the rebuilt output was refused", err)
		return
	}
	defer ver.Close()
	got := ver.Result.SHA256
	end.ArtifactSHA256 = got
	if res.SHA256 != "" && res.SHA256 != got {
		end.Error = fmt.Sprintf("the host reported release %s, its output packs to %s", res.SHA256, got)
		return
	}
	verdict := meta.Rebuild{BuildID: b.ID, Verdict: meta.VerdictReproducible, At: a.now().UTC(), SHA256: got}
	if got != v.ArtifactSHA256 {
		verdict.Verdict = meta.VerdictDiffers
		if rel, err := a.cfg.Meta.GetRelease(ctx, v.ArtifactSHA256); err == nil && rel.CollectedAt == nil {
			toc, err := a.cfg.Publisher.StoredTOC(ctx, rel.SHA256, rel.SizeBytes)
			if err != nil {
				a.log.Warn("rebuild: reading the recorded release's TOC", "build", b.ID, "release", rel.SHA256, "err", err)
			} else {
				verdict.Differs = publish.DiffTOCs(toc, ver.Result.TOC)
			}
		}
	}
	end.Verdict, end.Differs = verdict.Verdict, verdict.Differs
	if b.Kind == meta.BuildKindRestore {
		if verdict.Verdict != meta.VerdictReproducible {
			end.Error = fmt.Sprintf("the rebuild gave release %s, not the recorded %s: nothing was restored", got, v.ArtifactSHA256)
			return
		}
		uri, drop, err := ver.Store(ctx)
		if err != nil {
			fail("storing the restored release", err)
			return
		}
		defer drop()
		if _, err := a.cfg.Builds.RestoreVersion(ctx, v.ID, uri, b.ID, b.Actor); err != nil {
			fail("restoring the version", err)
			return
		}
		a.cfg.Changed()
	}
	if err := a.cfg.Builds.RecordRebuild(ctx, v.ID, verdict, b.Actor); err != nil {
		fail("recording the verdict", err)
		return
	}
	end.State = meta.BuildSucceeded
}

// buildVersion publishes a build's artifact as a new version of its
// deployment (created with it if missing).
func (a *API) buildVersion(r *http.Request, b *meta.Build, res hostapi.BuildResult, artifact io.Reader, end *meta.BuildEnd) (*meta.Version, error) {
	ctx := r.Context()
	d, err := a.cfg.Meta.GetDeployment(ctx, b.Deployment)
	isNew := false
	if errors.Is(err, meta.ErrNotFound) {
		d, err, isNew = &meta.Deployment{Name: b.Deployment, Kind: meta.KindStatic, RetentionDays: a.defaultRetention()}, nil, true
	}
	if err != nil {
		return nil, err
	}
	v, err := a.cfg.Publisher.Publish(ctx, d, artifact, publish.Options{
		Entrypoint: b.Entrypoint, Activate: b.Activate, Actor: b.Actor, Create: isNew, ExpectSHA256: res.SHA256,
		SourceSHA256: b.SourceSHA256, SourceSnapshot: true,
		Build: &meta.VersionBuild{BuildID: b.ID, Builder: b.Builder, BuilderRef: b.BuilderRef, Command: b.Command,
			Output: b.Output, Env: b.Env, SourceDateEpoch: b.SourceDateEpoch, Timeout: b.Timeout,
			MemoryBytes: b.MemoryBytes, Network: b.Network, DurationMS: res.DurationMS, LogSHA256: end.LogSHA256},
	})
	if err != nil {
		return nil, err
	}
	if err := a.cfg.Builds.SetBuildVersion(ctx, b.ID, v.VersionNumber); err != nil {
		return nil, err
	}
	a.cfg.Changed()
	return v, nil
}
