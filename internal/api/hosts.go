package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/sched"
)

// Hosts and instances (docs/design.md, "Hosts and instances"). An agent
// registers (POST /v1/hosts), heartbeats with what it observes (POST
// /v1/hosts/{id}/heartbeat) and long-polls its desired instances (GET
// /v1/hosts/{id}/desired?gen=G&wait=30s), all with an agent-scoped token.

// DefaultHostTimeout: a host silent this long is lost.
const DefaultHostTimeout = 10 * time.Second

// maxWait bounds a long-poll of desired instances.
const maxWait = 60 * time.Second

func (a *API) hostRoutes() {
	a.handle("POST /v1/hosts", needAgent, a.registerHost)
	a.handle("GET /v1/hosts", needReadAll, a.listHosts)
	a.handle("POST /v1/hosts/{id}/heartbeat", needAgent, a.heartbeat)
	a.handle("GET /v1/hosts/{id}/desired", needAgent, a.desired)
	a.handle("POST /v1/hosts/{id}/drain", needAdmin, a.drainHost)
	a.handle("GET /v1/deployments/{dep}/instances", needReadDeployment, a.listInstances)
	a.handle("GET /v1/deployments/{dep}/instances/{id}/logs", needReadDeployment, a.instanceLogs)
}

func (a *API) hosts() (meta.Hosts, error) {
	if a.cfg.Hosts == nil {
		return nil, problem.New(http.StatusNotImplemented, "hosts-off", "this server keeps no hosts")
	}
	return a.cfg.Hosts, nil
}

// Registration is the body of POST /v1/hosts: the host record's fields
// an agent sets, and where the API reaches it for logs.
type Registration struct {
	ID        string `json:"id,omitempty"` // empty: the API assigns one
	Hostname  string `json:"hostname"`
	Region    string `json:"region"`
	Driver    string `json:"driver"`
	Isolation string `json:"isolation"`
	// For microVM hosts: "kvm" or "tcg", and the guest kernel's sha256 (hex).
	Accel        string           `json:"accel,omitempty"`
	KernelSHA256 string           `json:"kernel_sha256,omitempty"`
	Capacity     hostapi.Capacity `json:"capacity"`
	AgentURL     string           `json:"agent_url"`
	AgentKey     string           `json:"agent_key"`
}

// Heartbeat is the body of POST /v1/hosts/{id}/heartbeat.
type Heartbeat struct {
	Used      hostapi.Capacity   `json:"used"`
	Instances []hostapi.Observed `json:"instances"`
	// Cached are the release sha256s the host's cache holds (placement
	// prefers hosts that hold an instance's release); nil: not reported.
	Cached []string `json:"cached_releases,omitempty"`
}

// DesiredSet is the answer of GET /v1/hosts/{id}/desired: Gen names the
// set; asking again with ?gen=Gen waits until it changes.
type DesiredSet struct {
	Gen       string            `json:"gen"`
	Instances []hostapi.Desired `json:"instances"`
}

// CheckRegistration validates a registration (also fuzzed).
func CheckRegistration(in *Registration) error {
	switch {
	case in.ID != "" && !instanceIDRE(in.ID):
		return badRequest("host id %q must be 1-64 of a-z, 0-9, _ and -", in.ID)
	case in.Driver == "" || !instanceIDRE(in.Driver):
		return badRequest("driver %q must be a name such as runc", in.Driver)
	case in.Isolation != hostapi.IsolationContainer && in.Isolation != hostapi.IsolationMicroVM:
		return badRequest("isolation %q must be %s or %s", in.Isolation, hostapi.IsolationContainer, hostapi.IsolationMicroVM)
	case in.Accel != "" && in.Accel != "kvm" && in.Accel != "tcg":
		return badRequest("accel %q must be kvm or tcg", in.Accel)
	case in.KernelSHA256 != "" && !isHexSHA256(in.KernelSHA256):
		return badRequest("kernel_sha256 must be 64 lowercase hex digits")
	case in.Capacity.CPU < 0 || in.Capacity.MemoryBytes < 0 || in.Capacity.Instances < 0:
		return badRequest("capacity must not be negative")
	case len(in.Hostname) > 253 || len(in.Region) > 63 || len(in.AgentKey) > 256:
		return badRequest("hostname, region or agent_key too long")
	}
	if in.AgentURL != "" {
		u, err := url.Parse(in.AgentURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badRequest("agent_url %q is not an http(s) URL", in.AgentURL)
		}
	}
	return nil
}

func instanceIDRE(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (a *API) registerHost(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	var in Registration
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := CheckRegistration(&in); err != nil {
		return err
	}
	h := &meta.Host{Host: hostapi.Host{ID: in.ID, Hostname: in.Hostname, Region: in.Region, Driver: in.Driver,
		Isolation: in.Isolation, Accel: in.Accel, KernelSHA256: in.KernelSHA256, Capacity: in.Capacity}, AgentURL: in.AgentURL, AgentKey: in.AgentKey,
		TokenID: principal(r).ID}
	if err := hs.RegisterHost(r.Context(), h, actorOf(r)); err != nil {
		return err
	}
	a.kick()
	return writeJSON(w, http.StatusOK, h)
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	a.markLost(r.Context())
	all, err := hs.ListHosts(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"hosts": all})
}

// agentHost loads the {id} host; an agent token may act only for the
// hosts it registered.
func (a *API) agentHost(r *http.Request, hs meta.Hosts) (*meta.Host, error) {
	id := r.PathValue("id")
	h, err := hs.GetHost(r.Context(), id)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, notFound("host %q not found: register it first", id)
	}
	if err != nil {
		return nil, err
	}
	if p := principal(r); !p.Admin() && h.TokenID != p.ID {
		return nil, forbidden(p, "the agent token that registered host "+id)
	}
	return h, nil
}

func (a *API) heartbeat(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	h, err := a.agentHost(r, hs)
	if err != nil {
		return err
	}
	var in Heartbeat
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := hs.Heartbeat(r.Context(), h.ID, in.Used, in.Instances); err != nil {
		if errors.Is(err, meta.ErrInvalid) {
			return badRequest("%s", strings.TrimPrefix(err.Error(), "meta: "))
		}
		return err
	}
	if in.Cached != nil && a.cfg.Sched != nil {
		if len(in.Cached) > 10000 {
			return badRequest("cached_releases: at most 10000")
		}
		for _, sha := range in.Cached {
			if !isHexSHA256(sha) {
				return badRequest("cached_releases: %q is not a sha256", sha)
			}
		}
		if err := a.cfg.Sched.ReportCache(r.Context(), h.ID, in.Cached); err != nil {
			return err
		}
	}
	if h.State == hostapi.HostLost {
		a.kick()
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) desired(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	h, err := a.agentHost(r, hs)
	if err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	prev := r.URL.Query().Get("gen")
	deadline := time.Now().Add(wait)
	for {
		set, err := a.desiredOf(r.Context(), hs, h.ID)
		if err != nil {
			return err
		}
		if set.Gen != prev || !time.Now().Before(deadline) {
			return writeJSON(w, http.StatusOK, set)
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitParam is a long poll's ?wait (0 without one), at most maxWait.
func waitParam(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return 0, nil
	}
	wait, err := time.ParseDuration(s)
	if err != nil || wait < 0 {
		return 0, badRequest("wait %q is not a duration such as 30s", s)
	}
	return min(wait, maxWait), nil
}

// desiredOf is host id's desired set.
func (a *API) desiredOf(ctx context.Context, hs meta.Hosts, id string) (*DesiredSet, error) {
	is, err := hs.ListInstances(ctx, meta.InstanceFilter{HostID: id})
	if err != nil {
		return nil, err
	}
	set := &DesiredSet{Instances: []hostapi.Desired{}}
	for _, in := range is {
		d, err := a.desiredInstance(ctx, in)
		if err != nil {
			return nil, err
		}
		set.Instances = append(set.Instances, *d)
	}
	b, _ := json.Marshal(set.Instances)
	sum := sha256.Sum256(b)
	set.Gen = hex.EncodeToString(sum[:8])
	return set, nil
}

func (a *API) desiredInstance(ctx context.Context, in meta.Instance) (*hostapi.Desired, error) {
	v, err := a.cfg.Meta.GetVersion(ctx, in.VersionID)
	if err != nil {
		return nil, err
	}
	rel, err := a.cfg.Meta.GetRelease(ctx, v.ArtifactSHA256)
	if err != nil {
		return nil, err
	}
	d := &hostapi.Desired{ID: in.ID, Deployment: in.DeploymentID, Version: v.VersionNumber,
		Release: v.ArtifactSHA256, TreeDigest: rel.TreeSHA256, Limits: sched.DefaultLimits}
	if rel.Kind == meta.KindOCI {
		if err := a.setOCIRuntime(ctx, d, v); err != nil {
			return nil, err
		}
	} else if rt := v.Runtime; rt != nil {
		d.Cmd, d.Env, d.Workdir, d.User, d.Port = rt.Cmd, rt.Env, rt.Workdir, rt.User, rt.Port
		if hc := rt.HealthCheck; hc != nil {
			d.HealthPath, d.HealthInterval, d.HealthTimeout = hc.Path, hc.Interval, hc.Timeout
		}
	}
	if a.cfg.Sched != nil {
		ds, err := a.cfg.Sched.GetDesired(ctx, in.DeploymentID)
		if err != nil {
			return nil, err
		}
		if ds.Desired.CPU > 0 {
			d.Limits.CPU = ds.Desired.CPU
		}
		if ds.Desired.MemoryBytes > 0 {
			d.Limits.MemoryBytes = ds.Desired.MemoryBytes
		}
		if hc := ds.Desired.HealthCheck; hc != nil {
			if hc.Path != "" {
				d.HealthPath = hc.Path
			}
			if hc.Interval != "" {
				d.HealthInterval = hc.Interval
			}
			if hc.Timeout != "" {
				d.HealthTimeout = hc.Timeout
			}
		}
	}
	if d.Port == 0 {
		d.Port = 8080
	}
	return d, nil
}

func (a *API) listInstances(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	is, err := hs.ListInstances(r.Context(), meta.InstanceFilter{DeploymentID: d.ID})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"instances": is})
}

// instanceLogs streams an instance's logs from its agent; when the agent
// cannot be reached it answers with the lines the record keeps.
func (a *API) instanceLogs(w http.ResponseWriter, r *http.Request) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	d, err := a.deployment(r)
	if err != nil {
		return err
	}
	in, err := hs.GetInstance(r.Context(), r.PathValue("id"))
	if errors.Is(err, meta.ErrNotFound) || (err == nil && in.DeploymentID != d.ID) {
		return notFound("instance %q of %s not found", r.PathValue("id"), d.Name)
	}
	if err != nil {
		return err
	}
	h, err := hs.GetHost(r.Context(), in.HostID)
	if err != nil {
		return err
	}
	follow := r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	resp, err := a.agentLogs(r.Context(), h, in.ID, follow)
	if err != nil {
		if len(in.LastLog) == 0 {
			return problem.New(http.StatusBadGateway, "agent-unreachable",
				fmt.Sprintf("host %s did not answer for the logs of %s", h.ID, in.ID))
		}
		w.WriteHeader(http.StatusOK)
		for _, l := range in.LastLog {
			fmt.Fprintln(w, l)
		}
		return nil
	}
	defer resp.Body.Close()
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	rc := http.NewResponseController(w)
	br := bufio.NewReader(resp.Body)
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if fl != nil {
				_ = rc.Flush()
			}
		}
		if err != nil {
			return nil
		}
	}
}

// agentLogs asks host h's agent for the logs of instance id.
func (a *API) agentLogs(ctx context.Context, h *meta.Host, id string, follow bool) (*http.Response, error) {
	if h.AgentURL == "" {
		return nil, errors.New("the host gave no agent URL")
	}
	u := strings.TrimRight(h.AgentURL, "/") + "/instances/" + url.PathEscape(id) + "/logs?follow=" + strconv.FormatBool(follow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.AgentKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("agent answered %s", resp.Status)
	}
	return resp, nil
}

// setReplicas stores a deployment's replicas and places its instances.
func (a *API) setReplicas(r *http.Request, d *meta.Deployment, n int) error {
	hs, err := a.hosts()
	if err != nil {
		return err
	}
	if d.Kind != meta.KindRootfs && d.Kind != meta.KindOCI {
		return badRequest("replicas apply to rootfs and oci deployments; %q has kind %q", d.Name, d.Kind)
	}
	if n < 0 || n > 1000 {
		return badRequest("replicas must be between 0 and 1000")
	}
	if _, err := hs.SetReplicas(r.Context(), d.ID, n, actorOf(r)); err != nil {
		return err
	}
	a.kick()
	return nil
}

// markLost makes hosts silent for HostTimeout lost.
func (a *API) markLost(ctx context.Context) {
	timeout := a.cfg.HostTimeout
	if timeout <= 0 {
		timeout = DefaultHostTimeout
	}
	if _, err := a.cfg.Hosts.MarkLostHosts(ctx, a.now().Add(-timeout), "server"); err != nil {
		a.log.Warn("marking lost hosts", "err", err)
	}
}

// kick asks the scheduler for a run soon (when it runs in this process;
// a scheduler elsewhere runs every half second anyway).
func (a *API) kick() {
	if a.cfg.Kick != nil {
		a.cfg.Kick()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
