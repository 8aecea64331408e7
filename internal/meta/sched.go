package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event actions of scheduling (docs/design.md, "Scheduling and routing").
const (
	ActionDesired          = "deployment.desired" // desired state changed: detail {"seq", "before", "after"}
	ActionHostDrain        = "host.drain"         // a host takes no new instances; its instances move away
	ActionRolloutStart     = "rollout.start"      // a rolling replacement began
	ActionRolloutProgress  = "rollout.progress"   // healthy instances of the target changed: {"healthy", "wanted"}
	ActionRolloutSucceed   = "rollout.succeed"    // the pointer moved (with its activate or rollback event)
	ActionRolloutFail      = "rollout.fail"       // the deadline passed: active version unchanged
	ActionRolloutSupersede = "rollout.supersede"  // a newer rollout of the deployment replaced it
)

// Rollout states.
const (
	RolloutRunning    = "running"
	RolloutSucceeded  = "succeeded"
	RolloutFailed     = "failed"
	RolloutSuperseded = "superseded"
)

// Desired is a dynamic deployment's desired state: how many instances of
// its active version, how big, where, how checked and how isolated.
// Zero fields mean the defaults (sched.DefaultLimits, no region
// constraint, the version's health check, all replicas healthy, no
// autostop, container isolation).
type Desired struct {
	Replicas    int          `json:"replicas"`
	CPU         float64      `json:"cpu,omitempty"`          // cores per instance
	MemoryBytes int64        `json:"memory_bytes,omitempty"` // per instance
	Regions     *Regions     `json:"regions,omitempty"`
	HealthCheck *HealthCheck `json:"health_check,omitempty"` // overrides the version's
	// MinHealthy is how many instances of the target must be healthy
	// before a rollout moves the pointer (nil: all of Replicas).
	MinHealthy *int   `json:"min_healthy,omitempty"`
	Autostop   string `json:"autostop,omitempty"`  // idle duration before stopping (stored only), e.g. "15m"
	Isolation  string `json:"isolation,omitempty"` // "container" (default) or "microvm"
}

// Wanted is how many healthy target instances a rollout waits for.
func (d Desired) Wanted() int {
	if d.MinHealthy != nil && *d.MinHealthy < d.Replicas {
		return max(*d.MinHealthy, 0)
	}
	return d.Replicas
}

// Regions is where a deployment's instances go: a count per region
// (JSON {"eu": 2, "us": 1}) or spread over every region (JSON "spread").
type Regions struct {
	Spread bool
	Count  map[string]int
}

// ParseRegions reads the CLI form: "spread" or "eu=2,us=1".
func ParseRegions(s string) (*Regions, error) {
	if s == "spread" {
		return &Regions{Spread: true}, nil
	}
	r := &Regions{Count: map[string]int{}}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.Atoi(v)
		if !ok || k == "" || len(k) > 63 || err != nil || n < 0 || n > 1000 {
			return nil, fmt.Errorf("regions %q: want spread or REGION=N,… (N between 0 and 1000)", s)
		}
		if _, dup := r.Count[k]; dup {
			return nil, fmt.Errorf("regions %q: region %q twice", s, k)
		}
		r.Count[k] = n
	}
	return r, nil
}

// Total is the sum of the per-region counts.
func (r *Regions) Total() int {
	n := 0
	if r != nil {
		for _, c := range r.Count {
			n += c
		}
	}
	return n
}

// String is the CLI form.
func (r *Regions) String() string {
	if r == nil {
		return "-"
	}
	if r.Spread {
		return "spread"
	}
	keys := make([]string, 0, len(r.Count))
	for k := range r.Count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(r.Count[k])
	}
	return strings.Join(parts, ",")
}

// MarshalJSON is "spread" or the object of counts.
func (r Regions) MarshalJSON() ([]byte, error) {
	if r.Spread {
		return []byte(`"spread"`), nil
	}
	if r.Count == nil {
		return []byte(`{}`), nil
	}
	return json.Marshal(r.Count)
}

// UnmarshalJSON accepts "spread" or an object of region → count (0-1000).
func (r *Regions) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil || s != "spread" {
			return fmt.Errorf("regions: want \"spread\" or an object of region counts")
		}
		*r = Regions{Spread: true}
		return nil
	}
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("regions: want \"spread\" or an object of region counts")
	}
	for k, n := range m {
		if k == "" || len(k) > 63 || n < 0 || n > 1000 {
			return fmt.Errorf("regions: region %q count %d: names of 1-63 bytes, counts 0-1000", k, n)
		}
	}
	*r = Regions{Count: m}
	return nil
}

// DesiredRecord is one row of a deployment's desired-state history.
type DesiredRecord struct {
	DeploymentID string    `json:"deployment_id"`
	Seq          int64     `json:"seq"` // 0: never set (the defaults)
	Desired      Desired   `json:"desired"`
	Actor        string    `json:"actor"`
	CreatedAt    time.Time `json:"created_at"`
}

// Rollout is one rolling replacement of a dynamic deployment's active
// version by ToVersionID.
type Rollout struct {
	ID              string     `json:"id"` // "ro_…"
	DeploymentID    string     `json:"deployment_id"`
	Action          string     `json:"action"` // ActionActivate or ActionRollback
	FromVersionID   *string    `json:"from_version_id"`
	ToVersionID     string     `json:"to_version_id"`
	ToVersionNumber int64      `json:"to_version_number"`
	State           string     `json:"state"`
	Reason          string     `json:"reason,omitempty"`
	Actor           string     `json:"actor"`
	Healthy         int        `json:"healthy"` // healthy instances of the target
	Wanted          int        `json:"wanted"`  // how many it waits for
	Deadline        time.Time  `json:"deadline"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	FinishedAt      *time.Time `json:"finished_at"`
}

// NewRollout starts a rollout.
type NewRollout struct {
	DeploymentID  string
	VersionNumber int64
	Action        string // ActionActivate or ActionRollback
	Deadline      time.Time
	Actor         string
}

// Scheduling is the scheduler's share of the store: desired state with
// history, draining, the hosts' caches and rollouts. Times come from the
// store's clock; every method is one transaction.
type Scheduling interface {
	// SetDesired stores d as depID's desired state: a new history row
	// (seq+1) and a "deployment.desired" event, and the replica count
	// placement reads; the placement generation moves. An unchanged d
	// stores nothing. It returns the record now current. Unknown
	// deployment: ErrNotFound; negative counts: ErrInvalid.
	SetDesired(ctx context.Context, depID string, d Desired, actor string) (*DesiredRecord, error)
	// GetDesired returns depID's current desired state (Seq 0 and the
	// replica count when never set).
	GetDesired(ctx context.Context, depID string) (*DesiredRecord, error)
	// DesiredHistory returns every row of depID's history, newest first.
	DesiredHistory(ctx context.Context, depID string) ([]DesiredRecord, error)

	// DrainHost makes host id draining (a "host.drain" event; the
	// placement generation moves) and returns it. A draining host stays
	// draining through heartbeats and registrations. Unknown: ErrNotFound;
	// a lost host: ErrConflict.
	DrainHost(ctx context.Context, id, actor string) (*Host, error)
	// ReportCache records the release sha256s host id's cache holds.
	ReportCache(ctx context.Context, id string, releases []string) error

	// StartRollout starts a rollout of the deployment to its version
	// VersionNumber (running; a "rollout.start" event; placement moves). A
	// running rollout of the deployment is superseded in the same
	// transaction. Unknown: ErrNotFound; collected: ErrGone; the version is
	// already active with no rollout running: ErrConflict.
	StartRollout(ctx context.Context, r NewRollout) (*Rollout, error)
	// ProgressRollout records healthy/wanted of a running rollout, with a
	// "rollout.progress" event when they change. Not running: ErrConflict.
	ProgressRollout(ctx context.Context, id string, healthy, wanted int, actor string) error
	// FinishRollout ends a running rollout. ok: the deployment's pointer
	// moves to the target (with its activate or rollback event) and the
	// rollout succeeds ("rollout.succeed"); else it fails with reason
	// ("rollout.fail") and the pointer stays. Not running: ErrConflict.
	FinishRollout(ctx context.Context, id string, ok bool, reason, actor string) (*Rollout, error)
	// GetRollout returns rollout id; ErrNotFound.
	GetRollout(ctx context.Context, id string) (*Rollout, error)
	// ListRollouts returns depID's rollouts, newest first (at most limit; 0: all).
	ListRollouts(ctx context.Context, depID string, limit int) ([]Rollout, error)
}

// Leader elects one process among those sharing the store.
type Leader interface {
	// TryLead tries to become the leader named name, without waiting.
	// Held elsewhere: ErrConflict. Otherwise lost is closed if the
	// leadership ends by itself (the store's session died) and release
	// gives it up; release must be called either way.
	TryLead(ctx context.Context, name string) (lost <-chan struct{}, release func(), err error)
}
