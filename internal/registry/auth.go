package registry

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// challenge is sent with every 401. Basic lets `docker login` work with the
// token as the password; a Bearer header with the token is accepted as well.
const challenge = `Basic realm="cairn"`

// credentials reports whether req carries credentials and whether they are
// the token: "Bearer <token>", or "Basic" with any user and the token as
// the password. An empty configured token matches nothing.
func (r *Registry) credentials(req *http.Request) (presented, valid bool) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return false, false
	}
	scheme, rest, _ := strings.Cut(h, " ")
	var secret string
	switch strings.ToLower(scheme) {
	case "bearer":
		secret = strings.TrimSpace(rest)
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return true, false
		}
		_, secret, _ = strings.Cut(string(raw), ":")
	default:
		return true, false
	}
	if r.cfg.Token == "" {
		return true, false
	}
	return true, subtle.ConstantTimeCompare([]byte(secret), []byte(r.cfg.Token)) == 1
}

// authorize lets the token holder do anything. Without credentials, reads
// (GET, HEAD) are allowed from repositories of deployments that allow
// anonymous pulls; everything else, and wrong credentials, is unauthorised.
// Upload status (GET on an upload) is part of a push and needs the token;
// so does the catalog, which names every repository.
func (r *Registry) authorize(req *http.Request, rt route) error {
	presented, valid := r.credentials(req)
	if valid {
		return nil
	}
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	if !presented && read && rt.kind != routePing && rt.kind != routeUpload && rt.kind != routeCatalog &&
		r.anonymousPull(req.Context(), rt.name) {
		return nil
	}
	if presented {
		return public(errUnauthorized, "invalid credentials")
	}
	return public(errUnauthorized, "credentials required")
}

// canPull reports whether the caller of req may read repo (a mount source).
func (r *Registry) canPull(req *http.Request, repo string) bool {
	if _, valid := r.credentials(req); valid {
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

// ping answers GET /v2/: 200 for the token holder (authorize ran first).
func (r *Registry) ping(w http.ResponseWriter, req *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write([]byte("{}"))
	}
	return nil
}
