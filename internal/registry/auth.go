package registry

import (
	"context"
	"errors"
	"net/http"

	"github.com/cairnhq/cairn/internal/token"
)

// challenge is sent with every 401. Basic lets `docker login` work with the
// token as the password; a Bearer header with the token is accepted as well.
const challenge = `Basic realm="cairn"`

// principal authenticates req: "Bearer <token>", or "Basic" with any user
// and the token as the password, the scheme in any case. No credentials:
// nil, nil. Credentials that are no valid token: errUnauthorized.
func (r *Registry) principal(req *http.Request) (*token.Principal, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	secret, ok := token.FromHeader(h, true)
	if !ok {
		return nil, public(errUnauthorized, "invalid credentials")
	}
	p, err := r.auth.Authenticate(req.Context(), secret)
	if errors.Is(err, token.ErrInvalid) {
		return nil, public(errUnauthorized, "invalid credentials: the token is unknown, expired or revoked")
	}
	return p, err
}

// authorize checks that the caller of req may use rt and returns req
// carrying the caller's principal (if any; for audit events).
//
//   - GET /v2/ (ping): any valid token.
//   - the catalog: read or admin.
//   - pulls (GET, HEAD of blobs, manifests, tags, referrers) of a
//     repository of deployment D: a token that Pulls(D) (admin, read,
//     deploy:D, push:D, pull:D), or anyone when D allows anonymous pulls.
//   - everything else (uploads and their status, manifest puts, deletes): a
//     token that Pushes(D) (admin, push:D).
//
// Without credentials: 401; a valid token without the scope: 403 DENIED.
func (r *Registry) authorize(req *http.Request, rt route) (*http.Request, error) {
	p, err := r.principal(req)
	if err != nil {
		return req, err
	}
	if p != nil {
		req = req.WithContext(token.With(req.Context(), p))
	}
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	dep := deploymentName(rt.name)
	switch {
	case rt.kind == routePing:
		if p != nil {
			return req, nil
		}
	case rt.kind == routeCatalog:
		if p != nil && p.ReadsAll() {
			return req, nil
		}
		if p != nil {
			return req, public(errDenied, "token %s may not list repositories: it needs the scope read or admin", p.ID)
		}
	case read && rt.kind != routeUpload:
		if p != nil && p.Pulls(dep) || r.anonymousPull(req.Context(), rt.name) {
			return req, nil
		}
		if p != nil {
			return req, public(errDenied, "token %s may not pull %s: it needs pull:%s, push:%s, deploy:%s, read or admin",
				p.ID, rt.name, dep, dep, dep)
		}
	default:
		if p != nil && p.Pushes(dep) {
			return req, nil
		}
		if p != nil {
			return req, public(errDenied, "token %s may not push to %s: it needs push:%s or admin", p.ID, rt.name, dep)
		}
	}
	return req, public(errUnauthorized, "credentials required")
}

// canPull reports whether the caller of req may read repo (a mount source).
func (r *Registry) canPull(req *http.Request, repo string) bool {
	if p := token.From(req.Context()); p != nil && p.Pulls(deploymentName(repo)) {
		return true
	}
	return r.anonymousPull(req.Context(), repo)
}

// anonymousPull reports whether the deployment owning repo allows pulls
// without credentials. Lookup failures deny.
func (r *Registry) anonymousPull(ctx context.Context, repo string) bool {
	d, err := r.findDeployment(ctx, deploymentName(repo))
	if err != nil {
		return false
	}
	ok, err := r.reg.OCIAnonymousPull(ctx, d.ID)
	if err != nil {
		r.log.Warn("registry: reading the anonymous-pull flag", "deployment", d.ID, "err", err)
		return false
	}
	return ok
}

// ping answers GET /v2/: 200 for any valid token (authorize ran first).
func (r *Registry) ping(w http.ResponseWriter, req *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write([]byte("{}"))
	}
	return nil
}
