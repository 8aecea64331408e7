// Package api serves cairn's HTTP API (v1): deployments, versions,
// releases, domains and events. Handlers return errors; package problem maps
// them to problem+json in one place. Mutating calls need the bearer token.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/publish"
)

// Config holds what the API needs.
type Config struct {
	Meta      meta.Store
	Blobs     blob.Store
	Publisher *publish.Publisher
	Token     string // bearer token for mutating calls
	Log       *slog.Logger
	// Changed, if set, is called after every committed pointer change.
	Changed func()
	// GC runs POST /v1/gc; nil answers 501.
	GC GCRunner
	// DefaultRetentionDays is the retention_days of a deployment created
	// without one (--retention-days); nil means 30.
	DefaultRetentionDays *int
	// Now is the API's clock (default time.Now).
	Now func() time.Time
	// Images makes versions of oci deployments from pushed images; nil
	// when the registry is off.
	Images Images
}

// API is the v1 HTTP handler.
type API struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// actor names the token holder in audit events.
const actor = "token:admin"

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Log}
	a.routes()
	return a
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) handle(pattern string, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !a.authorized(r) {
			problem.Write(w, r, a.log, problem.ErrUnauthorized)
			return
		}
		if err := h(w, r); err != nil {
			problem.Write(w, r, a.log, err)
		}
	})
}

func (a *API) routes() {
	a.handle("POST /v1/deployments", a.createDeployment)
	a.handle("GET /v1/deployments", a.listDeployments)
	a.handle("GET /v1/deployments/{dep}", a.getDeployment)
	a.handle("PATCH /v1/deployments/{dep}", a.patchDeployment)
	a.handle("POST /v1/deployments/{dep}/versions", a.createVersion)
	a.handle("GET /v1/deployments/{dep}/versions", a.listVersions)
	a.handle("GET /v1/deployments/{dep}/versions/{n}", a.getVersionByNumber)
	a.handle("GET /v1/versions/{id}", a.getVersion)
	a.handle("POST /v1/deployments/{dep}/activate", a.activate)
	a.handle("POST /v1/deployments/{dep}/rollback", a.rollback)
	a.handle("GET /v1/releases/{sha}", a.getRelease)
	a.handle("GET /v1/releases/{sha}/artifact", a.getArtifact)
	a.handle("POST /v1/domains", a.createDomain)
	a.handle("GET /v1/domains/{hostname}", a.getDomain)
	a.handle("PATCH /v1/domains/{hostname}", a.patchDomain)
	a.handle("GET /v1/events", a.listEvents)
	a.handle("GET /v1/domains/{hostname}/history", a.domainHistory)
	a.handle("GET /v1/deployments/{dep}/history", a.deploymentHistory)
	a.handle("POST /v1/gc", a.runGC)
	// Every other request. A pattern without a method matches any method,
	// so this one also takes a known path asked with a wrong method, which
	// unrouted answers 405 with Allow, as the mux would without it.
	a.mux.HandleFunc("/", a.unrouted)
}

// methods are those unrouted tries for Allow.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unrouted answers a request no route takes: 405 with Allow when its path
// is routed for other methods, else 404; both problem+json.
func (a *API) unrouted(w http.ResponseWriter, r *http.Request) {
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

func (a *API) authorized(r *http.Request) bool {
	tok, ok := bearerSecret(r.Header.Get("Authorization"))
	if !ok || a.cfg.Token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.Token)) == 1
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
