package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// Scheduling (docs/design.md, "Scheduling and routing"): a dynamic
// deployment's desired state (PATCH /v1/deployments/{dep}), its rollouts,
// and draining hosts. The scheduler (internal/sched, the sched role) acts
// on what these routes store.

// DefaultRolloutTimeout is a rollout's deadline when neither the request
// nor --rollout-timeout gives one.
const DefaultRolloutTimeout = 5 * time.Minute

func (a *API) schedRoutes() {
	a.handle("GET /v1/deployments/{dep}/desired", needReadDeployment, a.getDesired)
	a.handle("GET /v1/deployments/{dep}/rollouts", needReadDeployment, a.listRollouts)
	a.handle("GET /v1/deployments/{dep}/rollouts/{id}", needReadDeployment, a.getRollout)
}

func (a *API) sched() (meta.Scheduling, error) {
	if a.cfg.Sched == nil {
		return nil, problem.New(http.StatusNotImplemented, "sched-off", "this server keeps no desired state")
	}
	return a.cfg.Sched, nil
}

func dynamic(d *meta.Deployment) bool { return d.Kind == meta.KindRootfs || d.Kind == meta.KindOCI }

// DesiredPatch is the desired-state part of PATCH /v1/deployments/{dep}:
// each field present replaces the stored one ("regions": null, "health_check":
// null, "min_healthy": null clear theirs).
type DesiredPatch struct {
	Replicas    *int            `json:"replicas"`
	CPU         *float64        `json:"cpu"`
	MemoryBytes *int64          `json:"memory_bytes"`
	Regions     json.RawMessage `json:"regions"`
	HealthCheck json.RawMessage `json:"health_check"`
	MinHealthy  json.RawMessage `json:"min_healthy"`
	Autostop    *string         `json:"autostop"`
	Isolation   *string         `json:"isolation"`
}

// empty: no desired-state field is present.
func (p *DesiredPatch) empty() bool {
	return p.Replicas == nil && p.CPU == nil && p.MemoryBytes == nil && p.Regions == nil && p.HealthCheck == nil &&
		p.MinHealthy == nil && p.Autostop == nil && p.Isolation == nil
}

// onlyReplicas: the patch is a plain scale.
func (p *DesiredPatch) onlyReplicas() bool {
	q := *p
	q.Replicas = nil
	return p.Replicas != nil && q.empty()
}

// ApplyDesired applies p to d and checks the result (also fuzzed).
func ApplyDesired(d meta.Desired, p *DesiredPatch) (meta.Desired, error) {
	null := func(m json.RawMessage) bool { return string(m) == "null" }
	if p.Replicas != nil {
		d.Replicas = *p.Replicas
	}
	if p.CPU != nil {
		d.CPU = *p.CPU
	}
	if p.MemoryBytes != nil {
		d.MemoryBytes = *p.MemoryBytes
	}
	if p.Regions != nil {
		d.Regions = nil
		if !null(p.Regions) {
			var r meta.Regions
			if err := json.Unmarshal(p.Regions, &r); err != nil {
				return d, badRequest("%s", err.Error())
			}
			d.Regions = &r
		}
	}
	if p.HealthCheck != nil {
		d.HealthCheck = nil
		if !null(p.HealthCheck) {
			var hc meta.HealthCheck
			dec := json.NewDecoder(bytes.NewReader(p.HealthCheck))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&hc); err != nil {
				return d, badRequest("health_check: want {\"path\", \"interval\", \"timeout\"}")
			}
			d.HealthCheck = &hc
		}
	}
	if p.MinHealthy != nil {
		d.MinHealthy = nil
		if !null(p.MinHealthy) {
			var n int
			if err := json.Unmarshal(p.MinHealthy, &n); err != nil {
				return d, badRequest("min_healthy: want a count or null (all replicas)")
			}
			d.MinHealthy = &n
		}
	}
	if p.Autostop != nil {
		d.Autostop = *p.Autostop
	}
	if p.Isolation != nil {
		d.Isolation = *p.Isolation
	}
	if d.Regions != nil && len(d.Regions.Count) > 0 {
		if p.Replicas != nil && *p.Replicas != d.Regions.Total() {
			return d, badRequest("replicas %d differs from the sum of the region counts (%d)", *p.Replicas, d.Regions.Total())
		}
		d.Replicas = d.Regions.Total()
	}
	return d, checkDesired(d)
}

func checkDesired(d meta.Desired) error {
	switch {
	case d.Replicas < 0 || d.Replicas > 1000:
		return badRequest("replicas must be between 0 and 1000")
	case d.CPU < 0 || d.CPU > 1024:
		return badRequest("cpu must be between 0 (default) and 1024 cores")
	case d.MemoryBytes < 0 || (d.MemoryBytes > 0 && d.MemoryBytes < 4<<20):
		return badRequest("memory_bytes must be 0 (default) or at least 4 MiB")
	case d.MinHealthy != nil && (*d.MinHealthy < 0 || *d.MinHealthy > 1000):
		return badRequest("min_healthy must be between 0 and 1000")
	case d.Isolation != "" && d.Isolation != hostapi.IsolationContainer && d.Isolation != hostapi.IsolationMicroVM:
		return badRequest("isolation %q must be %s or %s", d.Isolation, hostapi.IsolationContainer, hostapi.IsolationMicroVM)
	}
	if d.Autostop != "" {
		if v, err := time.ParseDuration(d.Autostop); err != nil || v <= 0 || v > 30*24*time.Hour {
			return badRequest("autostop %q must be a duration such as 15m (at most 720h)", d.Autostop)
		}
	}
	if hc := d.HealthCheck; hc != nil {
		if len(hc.Path) > 1024 || (hc.Path != "" && hc.Path[0] != '/') {
			return badRequest("health_check.path %q must start with /", hc.Path)
		}
		for _, s := range []string{hc.Interval, hc.Timeout} {
			if v, err := time.ParseDuration(s); s != "" && (err != nil || v <= 0 || v > time.Hour) {
				return badRequest("health_check interval and timeout must be durations such as 2s")
			}
		}
	}
	return nil
}

// patchDesired applies the desired-state fields of a PATCH.
func (a *API) patchDesired(r *http.Request, d *meta.Deployment, p *DesiredPatch) error {
	if p.empty() {
		return nil
	}
	if !dynamic(d) {
		return badRequest("replicas, cpu, memory, regions, health_check, min_healthy, autostop and isolation apply to rootfs and oci deployments; %q has kind %q", d.Name, d.Kind)
	}
	if p.onlyReplicas() {
		if err := checkDesired(meta.Desired{Replicas: *p.Replicas}); err != nil {
			return err
		}
		if a.cfg.Sched != nil {
			cur, err := a.cfg.Sched.GetDesired(r.Context(), d.ID)
			if err != nil {
				return err
			}
			if cur.Desired.Regions != nil && len(cur.Desired.Regions.Count) > 0 {
				return badRequest("%s places per region (%s): set regions, or regions null first", d.Name, cur.Desired.Regions)
			}
		}
		return a.setReplicas(r, d, *p.Replicas)
	}
	ss, err := a.sched()
	if err != nil {
		return err
	}
	cur, err := ss.GetDesired(r.Context(), d.ID)
	if err != nil {
		return err
	}
	next, err := ApplyDesired(cur.Desired, p)
	if err != nil {
		return err
	}
	if _, err := ss.SetDesired(r.Context(), d.ID, next, actorOf(r)); err != nil {
		return err
	}
	a.kick()
	return nil
}

// schedDeployment is the scheduling store and the request's {dep}: a
// sched-off problem first, then a deployment not found.
func (a *API) schedDeployment(r *http.Request) (meta.Scheduling, *meta.Deployment, error) {
	ss, err := a.sched()
	if err != nil {
		return nil, nil, err
	}
	d, err := a.deployment(r)
	if err != nil {
		return nil, nil, err
	}
	return ss, d, nil
}

func (a *API) getDesired(w http.ResponseWriter, r *http.Request) error {
	ss, d, err := a.schedDeployment(r)
	if err != nil {
		return err
	}
	cur, err := ss.GetDesired(r.Context(), d.ID)
	if err != nil {
		return err
	}
	hist, err := ss.DesiredHistory(r.Context(), d.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"desired": cur, "history": hist})
}

func (a *API) listRollouts(w http.ResponseWriter, r *http.Request) error {
	ss, d, err := a.schedDeployment(r)
	if err != nil {
		return err
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return badRequest("limit must be between 1 and 1000")
		}
	}
	ros, err := ss.ListRollouts(r.Context(), d.ID, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rollouts": ros})
}

func (a *API) getRollout(w http.ResponseWriter, r *http.Request) error {
	ss, d, err := a.schedDeployment(r)
	if err != nil {
		return err
	}
	ro, err := ss.GetRollout(r.Context(), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) || (err == nil && ro.DeploymentID != d.ID) {
		return notFound("rollout %q of %s not found", r.PathValue("id"), d.Name)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ro)
}

// rolls says whether activating v of d is a rolling replacement: a
// dynamic deployment with instances wanted, an active version and a
// runnable target.
func (a *API) rolls(ctx context.Context, d *meta.Deployment, v *meta.Version) (bool, error) {
	if a.cfg.Sched == nil || !dynamic(d) || d.ActiveVersionID == nil || !a.Runnable(ctx, d, v) {
		return false, nil
	}
	ds, err := a.cfg.Sched.GetDesired(ctx, d.ID)
	if err != nil {
		return false, err
	}
	return ds.Desired.Replicas > 0, nil
}

// startRollout starts a rollout of d to v and answers 202 with the
// deployment (its active version unchanged) and the rollout.
func (a *API) startRollout(w http.ResponseWriter, r *http.Request, d *meta.Deployment, v *meta.Version, action string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = a.cfg.RolloutTimeout
	}
	if timeout <= 0 {
		timeout = DefaultRolloutTimeout
	}
	ro, err := a.cfg.Sched.StartRollout(r.Context(), meta.NewRollout{DeploymentID: d.ID, VersionNumber: v.VersionNumber,
		Action: action, Deadline: a.now().Add(timeout), Actor: actorOf(r)})
	if errors.Is(err, meta.ErrGone) {
		return a.collected(r, v)
	}
	if errors.Is(err, meta.ErrConflict) {
		// Already active with nothing running: as a pointer move, a no-op.
		d, err := a.present(r.Context(), d)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, d)
	}
	if err != nil {
		return err
	}
	a.kick()
	if d, err = a.cfg.Meta.GetDeployment(r.Context(), d.ID); err != nil {
		return err
	}
	if d, err = a.present(r.Context(), d); err != nil {
		return err
	}
	d.Rollout = ro
	status := http.StatusAccepted
	if ro.State != meta.RolloutRunning {
		status = http.StatusOK
	}
	return writeJSON(w, status, d)
}

// presentSched fills a dynamic deployment's desired state and newest rollout.
func (a *API) presentSched(ctx context.Context, d *meta.Deployment) error {
	if a.cfg.Sched == nil || !dynamic(d) {
		return nil
	}
	ds, err := a.cfg.Sched.GetDesired(ctx, d.ID)
	if err != nil {
		return err
	}
	d.Desired = &ds.Desired
	ros, err := a.cfg.Sched.ListRollouts(ctx, d.ID, 1)
	if err != nil {
		return err
	}
	if len(ros) > 0 {
		d.Rollout = &ros[0]
	}
	return nil
}

func (a *API) drainHost(w http.ResponseWriter, r *http.Request) error {
	ss, err := a.sched()
	if err != nil {
		return err
	}
	h, err := ss.DrainHost(r.Context(), r.PathValue("id"), actorOf(r))
	if errors.Is(err, meta.ErrNotFound) {
		return notFound("host %q not found", r.PathValue("id"))
	}
	if errors.Is(err, meta.ErrConflict) {
		return problem.New(http.StatusConflict, "host-lost", "host "+r.PathValue("id")+" is lost: its instances are being replaced already")
	}
	if err != nil {
		return err
	}
	a.kick()
	return writeJSON(w, http.StatusOK, h)
}
