package meta

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// Event actions of the host records (see docs/design.md, "Hosts and
// instances"). Instance state changes reported by heartbeats are not
// audited, apart from an instance becoming failed.
const (
	ActionHostRegister    = "host.register"    // a host registered (or came back after lost)
	ActionHostLost        = "host.lost"        // a host missed its heartbeats
	ActionDeploymentScale = "deployment.scale" // replicas changed: detail {"before": n, "after": n}
	ActionInstanceCreate  = "instance.create"  // placement put an instance on a host
	ActionInstanceRemove  = "instance.remove"  // placement took it away
	ActionInstanceFailed  = "instance.failed"  // it crashed too often
)

// Host is a compute host's record: what hostapi.Host says, and how the
// API reaches its agent (never shown by the API).
type Host struct {
	hostapi.Host
	// AgentURL is where the agent serves instance logs to the API, and
	// AgentKey the secret the API presents there (random per agent run).
	AgentURL string `json:"-"`
	AgentKey string `json:"-"`
	TokenID  string `json:"token_id,omitempty"` // the agent token that registered it
	// CreatedAt is when the host first registered.
	CreatedAt time.Time `json:"created_at"`
}

// Instance is one instance record: placed on a host by the API, observed
// by the host's agent. Its fields are those of GET
// /v1/deployments/{dep}/instances.
type Instance struct {
	ID            string     `json:"id"`
	DeploymentID  string     `json:"deployment_id"`
	VersionID     string     `json:"version_id"`
	VersionNumber int64      `json:"version_number"`
	HostID        string     `json:"host"`
	Release       string     `json:"release_sha256"`
	TreeDigest    string     `json:"tree_digest"` // as verified on the host ("" until it reports)
	State         string     `json:"state"`
	Addr          string     `json:"addr"`
	StartedAt     *time.Time `json:"started_at"`
	ExitCode      *int       `json:"exit_code"`
	Restarts      int        `json:"restarts"`
	LastLog       []string   `json:"last_log,omitempty"` // kept when it failed
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// InstanceFilter selects instances; zero fields mean any.
type InstanceFilter struct {
	DeploymentID string
	HostID       string
}

// NewInstance is an instance placement creates.
type NewInstance struct {
	ID           string // [a-z0-9-]
	DeploymentID string
	VersionID    string
	HostID       string
}

// PlacementState is what placement decides from, read in one snapshot.
type PlacementState struct {
	Gen       int64
	Hosts     []Host
	Instances []Instance
	Replicas  map[string]int // deployment id → replicas (> 0 only)
	// Desired holds the desired state of deployments that ever set one.
	Desired map[string]Desired
	// Rollouts are the running rollouts.
	Rollouts []Rollout
	// Wakes are the versions edges asked for (meta.Wakes), ordered by
	// deployment and version id.
	Wakes []Wake
}

// Hosts stores hosts, instances and replica counts. Times come from the
// store's clock; every method is one transaction.
type Hosts interface {
	// RegisterHost inserts h (ID "host_"+random if empty) or, when its ID
	// exists, replaces its hostname, region, driver, isolation, capacity,
	// agent URL and key; either way the host becomes ready with last_seen
	// now. A new host, or one that was lost, gets a "host.register" event.
	// *h is refreshed from the stored row. Empty driver: ErrInvalid.
	RegisterHost(ctx context.Context, h *Host, actor string) error
	// GetHost returns host id; ErrNotFound.
	GetHost(ctx context.Context, id string) (*Host, error)
	// ListHosts returns every host ordered by id.
	ListHosts(ctx context.Context) ([]Host, error)
	// Heartbeat sets host id's last_seen to now and used to used (a lost
	// host becomes ready again, with a "host.register" event), and applies
	// obs to the host's instances: state, addr, tree digest, started_at,
	// exit code, restarts and, when failed, last_log (cleared once the
	// instance reports healthy again; one "instance.failed"
	// event when an instance becomes failed). Observations of instances that
	// are not this host's are ignored. Unknown host: ErrNotFound.
	Heartbeat(ctx context.Context, id string, used hostapi.Capacity, obs []hostapi.Observed) error
	// MarkLostHosts makes every ready or draining host whose last_seen is
	// before `before` lost, with a "host.lost" event each, and returns their
	// ids (placement gen bumped when any). Their instances become stopped in
	// the same transaction, so they leave the routable (healthy) set at once.
	MarkLostHosts(ctx context.Context, before time.Time, actor string) ([]string, error)

	// ListInstances returns the instances matching f, ordered by id.
	ListInstances(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// GetInstance returns instance id; ErrNotFound.
	GetInstance(ctx context.Context, id string) (*Instance, error)

	// SetReplicas stores deployment depID's replicas (n >= 0, else
	// ErrInvalid) with a "deployment.scale" event when it changes, and
	// returns the previous count. Unknown deployment: ErrNotFound.
	SetReplicas(ctx context.Context, depID string, n int, actor string) (int, error)
	// GetReplicas returns depID's replicas (0 when never set).
	GetReplicas(ctx context.Context, depID string) (int, error)

	// PlacementState returns hosts, instances and replicas in one snapshot
	// with the current placement generation.
	PlacementState(ctx context.Context) (*PlacementState, error)
	// ApplyPlacement, if the placement generation is still gen, inserts
	// create (state pending, an "instance.create" event each), deletes
	// remove (an "instance.remove" event each) and bumps the generation.
	// The generation moved: ErrConflict (read the state again). An id of
	// create taken: ErrConflict; unknown deployment, version or host:
	// ErrNotFound.
	ApplyPlacement(ctx context.Context, gen int64, create []NewInstance, remove []string, actor string) error
}
