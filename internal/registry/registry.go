// Package registry is cairn's OCI distribution registry (distribution-spec
// v1.1) at /v2/: blob uploads (monolithic, chunked, streamed, mounts), blob
// and manifest pulls and deletes, tags and the referrers API, with sha256 and
// sha512 digests.
//
// Bytes live once in the shared blob.Store; which repository may serve which
// blob, manifests, tags and referrers are metadata (meta.Registry). A
// repository is "<deployment>" or "<deployment>/<path>"; pushing creates the
// deployment (kind oci), and pushing a tag to "<deployment>" itself publishes
// a version whose release is the image manifest. Upload sessions are shared
// by every process on the same stores (meta.Uploads, parts as blobs; see
// session.go) and expire. Every digest is verified server-side by
// blob.Store.Put; errors become OCI error JSON in one place (errors.go).
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/token"
)

// Defaults for zero Config fields.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxBlobBytes     = 10 << 30
	DefaultUploadTTL        = time.Hour
	// DefaultMaxUploads is the most unfinished upload sessions of one
	// deployment (all its repositories). A docker push keeps a few open at
	// once; the cap is for clients that open sessions and abandon them.
	DefaultMaxUploads = 100
)

// Store is what the registry needs of the metadata store: the records,
// the registry tables, the upload sessions (and their count per
// deployment), the leases of upload sessions and the stored tokens.
type Store interface {
	meta.Store
	meta.Registry
	meta.Uploads
	meta.UploadCounter
	meta.Leases
	meta.Tokens
}

// Config holds what the registry needs.
type Config struct {
	Meta  Store
	Blobs blob.Store
	// Token is the bootstrap admin token; the stored tokens (meta.Tokens)
	// are accepted too, each within its scopes (see
	// authorize). A token is sent as "Authorization: Bearer <token>" or as
	// the Basic password (any user).
	Token string
	// StageDir holds the chunks being received, on local disk (unlinked at
	// once); created if missing, emptied at start.
	StageDir string
	// Host is the registry's host[:port] as clients name it; it goes into
	// artifact URIs (oci://<host>/<repo>@sha256:…).
	Host             string
	MaxManifestBytes int64         // 0: DefaultMaxManifestBytes
	MaxBlobBytes     int64         // 0: DefaultMaxBlobBytes
	UploadTTL        time.Duration // idle upload sessions expire after it; 0: DefaultUploadTTL
	// MaxUploads caps the unexpired sessions of one deployment (its
	// repository and those under it): one more answers 429
	// TOOMANYREQUESTS. 0: DefaultMaxUploads. A push token is for one
	// deployment, so this is also a cap per push token.
	MaxUploads int
	Log        *slog.Logger
	Now        func() time.Time
	// Changed, if set, is called after a push published a version.
	Changed func()
}

// Registry is the /v2/ handler. It expects full request paths ("/v2/…"):
// mount it with mux.Handle("/v2/", r), without stripping the prefix.
type Registry struct {
	cfg     Config
	meta    Store
	reg     meta.Registry
	uploads meta.Uploads
	blobs   blob.Store
	log     *slog.Logger
	now     func() time.Time
	auth    *token.Authenticator
}

var _ http.Handler = (*Registry)(nil)

// New checks cfg, empties the staging directory, removes expired upload
// sessions and returns the handler.
func New(cfg Config) (*Registry, error) {
	if cfg.Meta == nil || cfg.Blobs == nil {
		return nil, errors.New("registry: Meta and Blobs are required")
	}
	switch {
	case cfg.StageDir == "":
		return nil, errors.New("registry: StageDir is required")
	case cfg.Host == "":
		return nil, errors.New("registry: Host is required (it names images in artifact URIs)")
	case cfg.MaxManifestBytes < 0, cfg.MaxBlobBytes < 0, cfg.UploadTTL < 0, cfg.MaxUploads < 0:
		return nil, errors.New("registry: MaxManifestBytes, MaxBlobBytes, UploadTTL and MaxUploads must not be negative")
	}
	if cfg.MaxUploads == 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.MaxManifestBytes == 0 {
		cfg.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if cfg.MaxBlobBytes == 0 {
		cfg.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if cfg.UploadTTL == 0 {
		cfg.UploadTTL = DefaultUploadTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	// Chunks are unlinked as soon as they are created: what is left is
	// from an older version, which kept its sessions here.
	if err := os.RemoveAll(cfg.StageDir); err != nil {
		return nil, fmt.Errorf("registry: staging directory: %w", err)
	}
	if err := os.MkdirAll(cfg.StageDir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: staging directory: %w", err)
	}
	r := &Registry{cfg: cfg, meta: cfg.Meta, reg: cfg.Meta, uploads: cfg.Meta, blobs: cfg.Blobs, log: cfg.Log, now: cfg.Now}
	r.auth = token.NewAuthenticator(cfg.Token, cfg.Meta, cfg.Now, cfg.Log)
	if _, err := r.SweepUploads(context.Background()); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return r, nil
}

// SetAnonymousPull allows or forbids pulls without credentials from every
// repository of dep (default: forbidden).
func (r *Registry) SetAnonymousPull(ctx context.Context, dep *meta.Deployment, allow bool) error {
	return r.reg.SetOCIAnonymousPull(ctx, dep.ID, allow)
}

// SetActivateOnPush names the tag whose push to dep's repository activates
// the version of the image pushed ("": a push never activates). A tag that
// is not valid, or a deployment not of kind oci: meta.ErrInvalid.
func (r *Registry) SetActivateOnPush(ctx context.Context, dep *meta.Deployment, tag, actor string) (*meta.Deployment, error) {
	if dep.Kind != meta.KindOCI {
		return nil, fmt.Errorf("%w: activate_on_push applies to oci deployments; %q is of kind %s", meta.ErrInvalid, dep.Name, dep.Kind)
	}
	if tag != "" && !tagRE.MatchString(tag) {
		return nil, fmt.Errorf("%w: activate_on_push %.200q is not a valid tag", meta.ErrInvalid, tag)
	}
	return r.reg.SetOCIActivateOnPush(ctx, dep.ID, tag, actor)
}

type handler func(w http.ResponseWriter, req *http.Request, rt route) error

// endpoint returns the handler of a route kind and method, nil if none.
func (r *Registry) endpoint(kind, method string) handler {
	switch kind + " " + method {
	case routePing + " GET", routePing + " HEAD":
		return r.ping
	case routeBlob + " GET", routeBlob + " HEAD":
		return r.getBlob
	case routeBlob + " DELETE":
		return r.deleteBlob
	case routeUploads + " POST":
		return r.startUpload
	case routeUpload + " GET":
		return r.uploadStatus
	case routeUpload + " PATCH":
		return r.patchUpload
	case routeUpload + " PUT":
		return r.finishUpload
	case routeUpload + " DELETE":
		return r.cancelUpload
	case routeManifest + " GET", routeManifest + " HEAD":
		return r.getManifest
	case routeManifest + " PUT":
		return r.putManifest
	case routeManifest + " DELETE":
		return r.deleteManifest
	case routeTags + " GET":
		return r.listTags
	case routeReferrers + " GET":
		return r.referrers
	case routeCatalog + " GET":
		return r.catalog
	}
	return nil
}

// ServeHTTP routes a /v2/ request, authorises it and maps any error to the
// OCI error format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := r.serve(w, req); err != nil {
		writeError(w, req, r.log, err)
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) error {
	rt, err := parseRoute(req.URL.Path)
	if err != nil {
		return err
	}
	h := r.endpoint(rt.kind, req.Method)
	if h == nil {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if r.endpoint(rt.kind, m) != nil {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return public(errUnsupported, "%s is not supported here; allowed: %s", req.Method, strings.Join(allow, ", "))
	}
	req, err = r.authorize(req, rt)
	if err != nil {
		return err
	}
	return h(w, req, rt)
}
