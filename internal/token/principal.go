package token

// BootstrapID is the id of the bootstrap admin token (the data dir's
// token file, or --token): its events name "token:admin".
const BootstrapID = "admin"

// Principal is an authenticated token: its id and scopes. The methods say
// what it may do; see docs/design.md, "Threat model: tokens and scopes".
type Principal struct {
	ID     string
	Scopes []Scope
}

// Actor names the principal in audit events: "token:<id>".
func (p *Principal) Actor() string { return "token:" + p.ID }

func (p *Principal) has(kind, dep string) bool {
	for _, s := range p.Scopes {
		if s.Kind == kind && s.Deployment == dep {
			return true
		}
	}
	return false
}

func (p *Principal) hasKind(kind string) bool {
	for _, s := range p.Scopes {
		if s.Kind == kind {
			return true
		}
	}
	return false
}

// Admin: everything, tokens included.
func (p *Principal) Admin() bool { return p.has(Admin, "") }

// ReadsAll: every read of the API (admin, read).
func (p *Principal) ReadsAll() bool { return p.Admin() || p.has(Read, "") }

// ReadsAny: some reads of the API (admin, read, any deploy scope); the
// handler filters to what Reads allows.
func (p *Principal) ReadsAny() bool { return p.ReadsAll() || p.hasKind(Deploy) }

// Reads deployment dep (by name) through the API: admin, read, deploy:dep.
func (p *Principal) Reads(dep string) bool { return p.ReadsAll() || p.has(Deploy, dep) }

// Deploys dep: publish, activate, roll back, repoint its domains (admin,
// deploy:dep).
func (p *Principal) Deploys(dep string) bool { return p.Admin() || p.has(Deploy, dep) }

// Pulls dep's repositories: admin, read, deploy:dep, push:dep, pull:dep.
func (p *Principal) Pulls(dep string) bool {
	return p.Reads(dep) || p.has(Push, dep) || p.has(Pull, dep)
}

// Pushes to dep's repositories (creating dep on a first push): admin,
// push:dep.
func (p *Principal) Pushes(dep string) bool { return p.Admin() || p.has(Push, dep) }

// Named reports whether one of p's scopes names dep.
func (p *Principal) Named(dep string) bool {
	for _, s := range p.Scopes {
		if s.Deployment == dep {
			return true
		}
	}
	return false
}

// Agent: a host agent's calls (register, heartbeat, desired instances,
// release artifacts): admin, agent.
func (p *Principal) Agent() bool { return p.Admin() || p.has(Agent, "") }
