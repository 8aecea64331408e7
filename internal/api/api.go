// Package api serves cairn's HTTP API (v1): deployments, versions,
// releases, domains and events. Handlers return errors; package problem maps
// them to problem+json in one place. Mutating calls need the bearer token.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/token"
)

// Store is what the API needs of the metadata store: records, retention
// policies, tokens, derivations and replica states.
type Store interface {
	meta.Store
	meta.Policies
	meta.Tokens
	meta.Derivations
	meta.Replicas
}

// Config holds what the API needs.
type Config struct {
	Meta      Store
	Blobs     blob.Store
	Publisher *publish.Publisher
	// Token is the bootstrap admin token (the token file or --token); the
	// stored tokens (Meta's meta.Tokens) are accepted too.
	Token string
	Log   *slog.Logger
	// Changed, if set, is called after every committed pointer change.
	Changed func()
	// GC runs POST /v1/gc; required.
	GC GCRunner
	// DefaultRetentionDays is the retention_days of a deployment created
	// without one (--retention-days); nil means 30.
	DefaultRetentionDays *int
	// Now is the API's clock (default time.Now).
	Now func() time.Time
	// Images makes versions of oci deployments from pushed images; nil
	// when the registry is off.
	Images Images
	// Sites makes the url and preview_url of records; nil leaves them out.
	Sites *Sites
	// Derive makes derived artifacts (rootfs of oci versions, erofs
	// images); nil answers 501.
	Derive Derivations
	// Hosts keeps hosts, instances and replicas; nil answers 501 on their
	// routes.
	Hosts meta.Hosts
	// HostTimeout: a host silent this long is lost (default 10 s).
	HostTimeout time.Duration
	// Sched keeps desired state, drains and rollouts; nil answers 501 on
	// their routes (and activations only move pointers).
	Sched meta.Scheduling
	// Kick, if set, asks this process's scheduler to run soon.
	Kick func()
	// RolloutTimeout is a rollout's deadline when the request gives none
	// (--rollout-timeout; 0: 5 minutes).
	RolloutTimeout time.Duration
	// Builds keeps source snapshots, builds, rebuilds and restores; nil
	// answers 501 on their routes.
	Builds meta.Builds
}

// API is the v1 HTTP handler.
type API struct {
	cfg  Config
	mux  *http.ServeMux
	log  *slog.Logger
	auth *token.Authenticator
	// patterns are the routes, in the order handle registered them.
	patterns []string
	// publishes are the incremental publishes under way (publishes.go).
	publishes publish.Sessions
	// derived are the rootfs derivations of oci versions placement used
	// (hosts_oci.go), by deployment and image digest.
	derived sync.Map
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Log}
	a.auth = token.NewAuthenticator(cfg.Token, cfg.Meta, cfg.Now, cfg.Log)
	a.routes()
	return a
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle serves pattern with h for a caller whose token allows need.
func (a *API) handle(pattern string, need access, h handlerFunc) {
	a.patterns = append(a.patterns, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err == nil {
			r = r.WithContext(token.With(r.Context(), p))
			if err = a.permit(r, p, need); err == nil {
				if err = h(w, r); err == nil {
					a.logOp(pattern, r, p)
				}
			}
		}
		if err != nil {
			problem.Write(w, r, a.log, err)
		}
	})
}

func (a *API) routes() {
	a.handle("POST /v1/deployments", needAdmin, a.createDeployment)
	a.handle("GET /v1/deployments", needReadAny, a.listDeployments)
	a.handle("GET /v1/deployments/{dep}", needReadDeployment, a.getDeployment)
	a.handle("PATCH /v1/deployments/{dep}", needAdmin, a.patchDeployment)
	a.handle("DELETE /v1/deployments/{dep}", needAdmin, a.deleteDeployment)
	a.handle("POST /v1/deployments/{dep}/versions", needDeploy, a.createVersion)
	a.handle("GET /v1/deployments/{dep}/versions", needReadDeployment, a.listVersions)
	a.handle("POST /v1/deployments/{dep}/publishes", needDeploy, a.startPublish)
	a.handle("PUT /v1/deployments/{dep}/publishes/{id}/contents/{sha}", needDeploy, a.putContent)
	a.handle("POST /v1/deployments/{dep}/publishes/{id}/commit", needDeploy, a.commitPublish)
	a.handle("DELETE /v1/deployments/{dep}/publishes/{id}", needDeploy, a.abandonPublish)
	a.handle("GET /v1/deployments/{dep}/versions/{n}", needReadDeployment, a.getVersionByNumber)
	a.handle("GET /v1/versions/{id}", needReadVersion, a.getVersion)
	a.handle("GET /v1/deployments/{dep}/versions/{n}/rootfs", needReadDeployment, a.getRootfs)
	a.handle("POST /v1/deployments/{dep}/activate", needDeploy, a.activate)
	a.handle("POST /v1/deployments/{dep}/rollback", needDeploy, a.rollback)
	a.handle("GET /v1/releases/{sha}", needReadAll, a.getRelease)
	a.handle("GET /v1/releases/{sha}/artifact", needReadOrAgent, a.getArtifact)
	a.handle("GET /v1/releases/{sha}/erofs", needReadOrAgent, a.getErofs)
	a.handle("POST /v1/domains", needAdmin, a.createDomain)
	a.handle("GET /v1/domains", needReadAny, a.listDomains)
	a.handle("DELETE /v1/domains/{hostname}", needAdmin, a.deleteDomain)
	a.handle("GET /v1/domains/{hostname}", needReadDomain, a.getDomain)
	a.handle("PATCH /v1/domains/{hostname}", needDeployDomain, a.patchDomain)
	a.handle("GET /v1/events", needReadAny, a.listEvents)
	a.handle("GET /v1/domains/{hostname}/history", needReadDomain, a.domainHistory)
	a.handle("GET /v1/deployments/{dep}/history", needReadDeployment, a.deploymentHistory)
	a.handle("POST /v1/gc", needAdmin, a.runGC)
	a.handle("POST /v1/tokens", needAdmin, a.createToken)
	a.handle("GET /v1/tokens", needAdmin, a.listTokens)
	a.handle("GET /v1/tokens/{id}", needAdmin, a.getToken)
	a.handle("DELETE /v1/tokens/{id}", needAdmin, a.revokeToken)
	a.hostRoutes()
	a.schedRoutes()
	a.buildRoutes()
	// Every other request. A pattern without a method matches any method,
	// so this one also takes a known path asked with a wrong method, which
	// unrouted answers 405 with Allow, as the mux would without it.
	a.mux.HandleFunc("/", a.unrouted)
}

// methods are those unrouted tries for Allow.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unrouted answers a request no route takes: 405 with Allow when its path
// is routed for other methods, else 404; both problem+json. Under /v1/ it
// needs a valid token first (401), as every route does.
func (a *API) unrouted(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") { // no probing of routes without a token
		if _, err := a.authenticate(r); err != nil {
			problem.Write(w, r, a.log, err)
			return
		}
	}
	var allow []string
	for _, m := range methods {
		probe := *r
		probe.Method = m
		if _, pattern := a.mux.Handler(&probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		problem.Write(w, r, a.log, problem.New(http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	problem.Write(w, r, a.log, problem.New(http.StatusMethodNotAllowed, "method-not-allowed",
		fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))))
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mux.ServeHTTP(w, r)
}

// maxJSON bounds JSON request bodies.
const maxJSON = 1 << 20

// decode reads a strict JSON body into v.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, maxJSON))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body, expected a JSON object", problem.ErrBadRequest)
		}
		return fmt.Errorf("%w: invalid JSON body: %s", problem.ErrBadRequest, jsonMsg(err))
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", problem.ErrBadRequest)
	}
	return nil
}

// jsonMsg keeps the decoder's message, which names fields and types only.
func jsonMsg(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed JSON"
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func badRequest(format string, a ...any) error {
	return problem.New(http.StatusBadRequest, "bad-request", fmt.Sprintf(format, a...))
}

func notFound(format string, a ...any) error {
	return problem.New(http.StatusNotFound, "not-found", fmt.Sprintf(format, a...))
}
