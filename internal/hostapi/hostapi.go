// Package hostapi is the contract of the runtime half of cairn, in two
// parts:
//   - the records an agent and the API exchange over HTTP (Host,
//     Desired, Observed), with their JSON field names;
//   - Runtime, what the agent drives on its own host: the release cache,
//     per-instance roots, networking and a Driver (runc, microVMs).
//
// The agent loop (internal/agent) speaks to the API and to a Runtime; the
// host side (internal/runtime) implements Runtime. Neither reaches the
// metadata store: an agent knows the API's URL and an agent-scoped token.
// See docs/design.md, "Hosts and instances".
package hostapi

import (
	"context"
	"io"
	"time"
)

// Isolation levels, weakest first. A deployment that asks for a level is
// never placed on a host whose driver gives a weaker one.
const (
	IsolationContainer = "container" // namespaces, cgroups, seccomp (runc)
	IsolationMicroVM   = "microvm"   // a guest kernel (qemu microvm, Firecracker)
)

// Host states.
const (
	HostReady    = "ready"
	HostDraining = "draining" // takes no new instances; its instances move away
	HostLost     = "lost"     // missed heartbeats; its instances are replaced
)

// Instance states (docs/contract.md: pending|starting|healthy|unhealthy|stopping|
// stopped|failed).
const (
	StatePending   = "pending"   // desired, not yet started by its host
	StateStarting  = "starting"  // process started, health not yet seen
	StateHealthy   = "healthy"   // answers its health check
	StateUnhealthy = "unhealthy" // running, failing its health check
	StateStopping  = "stopping"
	StateStopped   = "stopped"
	StateFailed    = "failed" // crashed too often; its last log lines are kept
)

// Capacity is what a host offers, or what its instances use.
type Capacity struct {
	CPU         float64 `json:"cpu"`          // cores
	MemoryBytes int64   `json:"memory_bytes"` // bytes
	Instances   int     `json:"instances"`    // instance slots
}

// Host is the record of one compute host, as the API keeps it.
type Host struct {
	ID        string `json:"id"`
	Hostname  string `json:"hostname"`
	Region    string `json:"region"`
	Driver    string `json:"driver"`    // "runc", "qemu", "firecracker"
	Isolation string `json:"isolation"` // IsolationContainer or IsolationMicroVM
	// Accel and KernelSHA256: how a microVM host boots its guests ("kvm"
	// or "tcg", and the guest kernel's sha256); empty on container hosts.
	Accel        string    `json:"accel,omitempty"`
	KernelSHA256 string    `json:"kernel_sha256,omitempty"`
	Capacity     Capacity  `json:"capacity"`
	Used         Capacity  `json:"used"`
	LastSeen     time.Time `json:"last_seen"`
	State        string    `json:"state"`
	// Cached are the release sha256s the host's cache holds (as its agent
	// last reported them); placement prefers these hosts.
	Cached []string `json:"cached_releases,omitempty"`
}

// Limits bound one instance; the driver enforces them (cgroups for runc).
type Limits struct {
	CPU         float64 `json:"cpu"`          // cores, e.g. 0.5
	MemoryBytes int64   `json:"memory_bytes"` // hard limit: past it the instance is OOM-killed
	Pids        int64   `json:"pids"`         // most processes and threads
}

// Desired is one instance the API wants running on a host.
type Desired struct {
	ID         string            `json:"id"` // instance id: [a-z0-9-], unique over all hosts
	Deployment string            `json:"deployment"`
	Version    int64             `json:"version"`     // the version's number
	Release    string            `json:"release"`     // sha256 (hex) of the rootfs release
	TreeDigest string            `json:"tree_digest"` // the release TOC's tree digest, verified on the host
	Cmd        []string          `json:"cmd"`         // meta.Runtime.Cmd
	Env        map[string]string `json:"env,omitempty"`
	Workdir    string            `json:"workdir,omitempty"`
	User       string            `json:"user,omitempty"`
	Port       int               `json:"port"` // the app listens on it; passed as $PORT
	HealthPath string            `json:"health_path,omitempty"`
	// HealthInterval is how often a healthy instance is checked again
	// (a Go duration; "": every agent tick), HealthTimeout how long one
	// check may take ("": 1 s).
	HealthInterval string `json:"health_interval,omitempty"`
	HealthTimeout  string `json:"health_timeout,omitempty"`
	Limits         Limits `json:"limits"`
	Egress         bool   `json:"egress"` // may the instance open connections beyond its host bridge
}

// Observed is what a host reports of one instance.
type Observed struct {
	ID         string    `json:"id"`
	State      string    `json:"state"`
	Addr       string    `json:"addr,omitempty"`        // ip:port on the host bridge, reachable by the host and the router
	TreeDigest string    `json:"tree_digest,omitempty"` // of the root the host verified before starting
	StartedAt  time.Time `json:"started_at,omitzero"`
	ExitCode   *int      `json:"exit_code,omitempty"`
	Restarts   int       `json:"restarts"`
	LastLog    []string  `json:"last_log,omitempty"` // kept when the instance failed
}

// MicroVMRuntime is a Runtime whose instances are microVMs; the agent
// records what it says on the host record.
type MicroVMRuntime interface {
	Runtime
	Accel() string        // "kvm" or "tcg"
	KernelSHA256() string // of the guest kernel, hex
}

// Runtime is the host side of an agent: it fetches and verifies releases
// into its cache, makes each instance a root of its own, gives it a
// network namespace and runs it with its driver.
type Runtime interface {
	// Driver and Isolation name what this host runs instances with.
	Driver() string
	Isolation() string
	// Start makes d run: fetch and verify the release (once per host),
	// make its root, its network and start it. It returns once the
	// instance's process runs (StateStarting); health is the agent's.
	// Start of an id whose process has exited runs it again in the same
	// root and network: that is how the agent restarts a crash (with
	// backoff, counting Restarts).
	Start(ctx context.Context, d Desired) (Observed, error)
	// Stop stops an instance (SIGTERM, then SIGKILL after grace) and
	// releases what it held; teardown may finish after Stop returns.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// List returns every instance on this host, including those an
	// earlier agent process started: an agent that restarts adopts them.
	// An instance whose process exited by itself is StateStopped with its
	// ExitCode set.
	List(ctx context.Context) ([]Observed, error)
	// Logs copies an instance's stdout and stderr to w: what is kept, and
	// with follow, what comes after until ctx ends or the instance stops.
	Logs(ctx context.Context, id string, follow bool, w io.Writer) error
}

// CacheReporter is a Runtime that can say which releases its cache holds;
// the agent reports them in its heartbeats, and placement prefers hosts
// that hold an instance's release.
type CacheReporter interface {
	CachedReleases() []string
}

// Build is one build a host runs (docs/design.md, "Sources, builds and
// rebuilds"): the builder's rootfs release is the root, read-only below
// a layer of the build's own; the source snapshot (a static-format
// release) is copied to /src; Command runs as `/bin/sh -c Command` in
// /src with umask 022, no network (a namespace with loopback only) unless
// Network, and a fixed environment: PATH, HOME=/root, LANG and LC_ALL C.UTF-8, TZ UTC,
// SOURCE_DATE_EPOCH, then Env. When it exits 0, the directory Output
// (relative to /src) is packed as a static release.
type Build struct {
	ID              string            `json:"id"`           // bld_…: the build record's id
	Builder         string            `json:"builder"`      // sha256 (hex) of the builder's rootfs release
	BuilderTree     string            `json:"builder_tree"` // its tree digest, verified on the host
	Source          string            `json:"source"`       // sha256 (hex) of the source snapshot
	SourceTree      string            `json:"source_tree"`  // its tree digest, verified on the host
	Command         string            `json:"command"`
	Output          string            `json:"output"` // a directory relative to /src; "." is /src
	Env             map[string]string `json:"env,omitempty"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	Timeout         string            `json:"timeout"` // a Go duration: the command is killed past it
	Limits          Limits            `json:"limits"`
	// DiskBytes bounds what the build may write to its root: its upper
	// layer, which holds the copy of the source at /src too, so the source
	// counts. A file counts its size or its blocks, the larger; past the
	// limit the command is killed (the runtime measures the layer every
	// ~500 ms while it runs, and once after it exits). 0 is the runtime's
	// default, 10 GiB. The tmpfs mounts of the runc spec (/tmp, /dev,
	// /dev/shm, 64 MiB each) are memory, not disk, and do not count.
	DiskBytes int64 `json:"disk_bytes"`
	// Network gives the build what an instance with egress has: an
	// address on the host's bridge, a default route (masqueraded) and
	// the host's resolvers in /etc/resolv.conf, released when it ends.
	// Without it, the namespace has a loopback and nothing else.
	Network bool `json:"network,omitempty"`
}

// BuildResult is what a host reports of a build it ran.
type BuildResult struct {
	ExitCode int `json:"exit_code"` // the command's; -1 if it did not end by itself (killed at its timeout)
	// Error says why the build failed when its exit code does not: "timed
	// out after 10m0s", "output dist: not a directory", "output dist: is a
	// symlink", "output dist/x: a link that leaves the output", "output
	// dist: more than 100000 files and directories", "killed (exit 137):
	// out of memory?" (a SIGKILL under a memory limit). It names the
	// build's paths only (relative to /src), never the host's. Empty when
	// the build succeeded.
	Error      string `json:"error,omitempty"`
	SHA256     string `json:"sha256,omitempty"` // of the packed output, when it was packed
	DurationMS int64  `json:"duration_ms"`      // of the command
}

// Builder is a Runtime that runs builds.
type Builder interface {
	// Build runs b to its end. The command's stdout and stderr go to log
	// as they come. When it exits 0, its output is packed into artifact
	// (a static release, release.PackDir) and SHA256 is the artifact's.
	// Nothing is written to artifact unless the pack succeeded.
	// A build that fails (exit code, timeout, no output directory, an
	// output the static format refuses) is a BuildResult with Error or a
	// non-zero ExitCode, not an error; error is for the host's own
	// failures (fetching the builder, mounting) and invalid input.
	// Nothing of a build is left on the host once Build returns.
	Build(ctx context.Context, b Build, artifact io.Writer, log io.Writer) (BuildResult, error)
}
