package token

import (
	"fmt"
	"regexp"
	"strings"
)

// Scope kinds. A scope is a kind alone (admin, read, agent) or a kind and
// a deployment name (deploy:web, push:web, pull:web).
const (
	Admin  = "admin"  // everything
	Read   = "read"   // every read of the API; pulls of every repository
	Agent  = "agent"  // host agents: register, heartbeat, read their desired instances and the releases they run
	Deploy = "deploy" // publish, activate and roll back one deployment, repoint its domains, read it, pull it
	Push   = "push"   // registry: push to (and pull from) one deployment's repositories
	Pull   = "pull"   // registry: pull from one deployment's repositories
)

// Scope is one parsed scope.
type Scope struct {
	Kind       string
	Deployment string // deploy, push, pull: the deployment's name
}

func (s Scope) String() string {
	if s.Deployment == "" {
		return s.Kind
	}
	return s.Kind + ":" + s.Deployment
}

// nameRE is a deployment name: a DNS label ("--" is refused apart).
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseScope parses one scope; the error says what is accepted.
func ParseScope(s string) (Scope, error) {
	kind, dep, named := strings.Cut(s, ":")
	switch kind {
	case Admin, Read, Agent:
		if !named {
			return Scope{Kind: kind}, nil
		}
		return Scope{}, fmt.Errorf("scope %.80q: %s takes no deployment", s, kind)
	case Deploy, Push, Pull:
		if !named {
			return Scope{}, fmt.Errorf("scope %.80q: write %s:<deployment>", s, kind)
		}
		if !nameRE.MatchString(dep) || strings.Contains(dep, "--") {
			return Scope{}, fmt.Errorf("scope %.80q: %.80q is not a deployment name (a DNS label)", s, dep)
		}
		return Scope{Kind: kind, Deployment: dep}, nil
	}
	return Scope{}, fmt.Errorf("scope %.80q: unknown (known: admin, read, agent, deploy:<deployment>, push:<deployment>, pull:<deployment>)", s)
}

// ParseScopes parses a token's scopes; at least one, no duplicates.
func ParseScopes(ss []string) ([]Scope, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("a token needs at least one scope")
	}
	out := make([]Scope, 0, len(ss))
	seen := map[Scope]bool{}
	for _, s := range ss {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		if seen[sc] {
			return nil, fmt.Errorf("scope %q is given twice", s)
		}
		seen[sc] = true
		out = append(out, sc)
	}
	return out, nil
}
