package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/token"
)

// access is what a route needs of the caller's token (see docs/design.md,
// "Threat model: tokens and scopes"). Every /v1 route needs a token.
type access int

const (
	needToken          access = iota // any valid token (unknown routes)
	needAdmin                        // admin
	needReadAll                      // admin, read
	needReadAny                      // admin, read, deploy:*; the handler filters
	needReadDeployment               // the {dep}: admin, read, deploy:{dep}
	needDeploy                       // the {dep}: admin, deploy:{dep}
	needReadVersion                  // the {id} version's deployment: as needReadDeployment
	needReadDomain                   // the {hostname} domain's deployment: as needReadDeployment
	needDeployDomain                 // the {hostname} domain's deployment: as needDeploy
	needAgent                        // admin, agent: a host agent's calls
	needReadOrAgent                  // admin, read, agent: releases an agent fetches
	needReadBuild                    // the {id} build's deployment: as needReadDeployment
)

// authenticate returns the principal of r's bearer token: 401 without one
// or with a token that is unknown, expired or revoked.
func (a *API) authenticate(r *http.Request) (*token.Principal, error) {
	secret, ok := token.FromHeader(r.Header.Get("Authorization"), false)
	if !ok {
		return nil, problem.New(http.StatusUnauthorized, "unauthorized",
			"this endpoint needs Authorization: Bearer <token>")
	}
	p, err := a.auth.Authenticate(r.Context(), secret)
	if errors.Is(err, token.ErrInvalid) {
		return nil, problem.New(http.StatusUnauthorized, "unauthorized", "the token is unknown, expired or revoked")
	}
	return p, err
}

// permit reports nil if p may call the route: 403 otherwise. Checks by
// deployment load its name; a deployment, version or domain that does not
// exist answers 404 only to a caller who may read every deployment or
// whose scopes name it, 403 to any other (no probing of names).
func (a *API) permit(r *http.Request, p *token.Principal, need access) error {
	if p.Admin() {
		return nil
	}
	switch need {
	case needToken:
		return nil
	case needAdmin:
		return forbidden(p, "admin")
	case needReadAll:
		if p.ReadsAll() {
			return nil
		}
		return forbidden(p, "read or admin")
	case needAgent:
		if p.Agent() {
			return nil
		}
		return forbidden(p, "agent or admin")
	case needReadOrAgent:
		if p.ReadsAll() || p.Agent() {
			return nil
		}
		return forbidden(p, "read, agent or admin")
	case needReadAny:
		if p.ReadsAny() {
			return nil
		}
		return forbidden(p, "read, deploy:<deployment> or admin")
	}
	read := need == needReadDeployment || need == needReadVersion || need == needReadDomain || need == needReadBuild
	if read && p.ReadsAll() {
		return nil
	}
	name, key, err := a.ownerName(r.Context(), r, need)
	if errors.Is(err, meta.ErrNotFound) {
		if need == needReadDomain || need == needDeployDomain || need == needReadVersion || need == needReadBuild {
			// The key is a hostname or a version id, not a deployment:
			// only a token that reads everything learns it does not exist.
			return forbidden(p, "read or admin (it names none of this token's deployments)")
		}
		if p.Named(key) {
			return nil // the handler answers 404
		}
		return forbidden(p, scopeNeeded(need, key))
	}
	if err != nil {
		return err
	}
	if (read && p.Reads(name)) || (!read && p.Deploys(name)) {
		return nil
	}
	return forbidden(p, scopeNeeded(need, name))
}

// ownerName returns the name of the deployment the route's path names
// (through a version id or a hostname), and the path key it came from.
func (a *API) ownerName(ctx context.Context, r *http.Request, need access) (name, key string, err error) {
	m := a.cfg.Meta
	var depID string
	switch need {
	case needReadVersion:
		key = r.PathValue("id")
		v, err := m.GetVersion(ctx, key)
		if err != nil {
			return "", key, err
		}
		depID = v.DeploymentID
	case needReadBuild:
		// A build names its deployment, which its first success creates.
		key = r.PathValue("id")
		if a.cfg.Builds == nil {
			return "", key, meta.ErrNotFound
		}
		b, err := a.cfg.Builds.GetBuild(ctx, key)
		if err != nil {
			return "", key, err
		}
		return b.Deployment, key, nil
	case needReadDomain, needDeployDomain:
		key = strings.ToLower(r.PathValue("hostname"))
		dom, err := m.GetDomain(ctx, key)
		if err != nil {
			return "", key, err
		}
		depID = dom.DeploymentID
	default:
		key, depID = r.PathValue("dep"), r.PathValue("dep")
	}
	d, err := m.GetDeployment(ctx, depID)
	if err != nil {
		return "", key, err
	}
	return d.Name, key, nil
}

func scopeNeeded(need access, name string) string {
	if need == needDeploy || need == needDeployDomain {
		return fmt.Sprintf("deploy:%s or admin", name)
	}
	return fmt.Sprintf("read, deploy:%s or admin", name)
}

// forbidden is the 403 for a valid token without the scope a route needs.
func forbidden(p *token.Principal, needs string) error {
	return problem.New(http.StatusForbidden, "forbidden",
		fmt.Sprintf("token %s may not do this: it needs the scope %s", p.ID, needs))
}

// principal is the authenticated caller of r (set by handle).
func principal(r *http.Request) *token.Principal {
	if p := token.From(r.Context()); p != nil {
		return p
	}
	return &token.Principal{ID: "none"} // never: every route authenticates
}

// actorOf names the caller of r in audit events: "token:<id>".
func actorOf(r *http.Request) string { return principal(r).Actor() }
