// Package runtime is the host side of an agent: it implements
// hostapi.Runtime over a release cache (package cache), per-instance
// overlayfs roots (package overlay), a network namespace per instance
// (package netns) and a Driver that runs the instance (package runc now,
// microVM drivers later). Every driver runs the one conformance suite in
// package drivertest. State lives on disk under the data directory, so a
// new Runtime over the same directory adopts the instances an earlier
// process started. See docs/design.md, "Hosts and instances".
package runtime

import (
	"context"
	"errors"
	"syscall"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// Spec is what a driver needs to run one instance. The runtime prepares
// everything in it before Start: the root is mounted, the network
// namespace exists with its address, the files cairn adds are in place.
type Spec struct {
	ID     string // [a-z0-9-]
	Dir    string // the instance's own directory; the driver may keep its files (bundle) there
	Root   string // the instance's root filesystem, mounted
	NetNS  string // path of the network namespace to join
	Log    string // stdout and stderr are appended to this file
	Args   []string
	Env    []string // KEY=value, $PORT included
	Cwd    string
	User   string // "uid[:gid]", "" is 0:0
	Limits hostapi.Limits
}

// Status of an instance as its driver sees it.
type Status struct {
	Running  bool
	Pid      int
	ExitCode *int // once it stopped, when known
}

// ErrNotFound: the driver knows no instance by that id.
var ErrNotFound = errors.New("no such instance")

// Driver runs instances in some isolation (namespaces and cgroups for
// runc; a guest kernel for microVM drivers). Its instances outlive the
// process that started them; a new Driver over the same state finds them.
// Every method is safe for concurrent use on different ids.
type Driver interface {
	Name() string      // "runc"
	Isolation() string // hostapi.IsolationContainer or hostapi.IsolationMicroVM
	// Start runs spec; it returns once the instance's process runs. An id
	// that exists but stopped is deleted and started again.
	Start(ctx context.Context, spec Spec) error
	// Signal sends sig to the instance's processes (all of them).
	Signal(ctx context.Context, id string, sig syscall.Signal) error
	// Status reports a known instance; ErrNotFound otherwise.
	Status(ctx context.Context, id string) (Status, error)
	// Delete removes a stopped (or, with force, running) instance's
	// driver state; deleting an unknown id is not an error.
	Delete(ctx context.Context, id string, force bool) error
}

var _ hostapi.Runtime = (*Runtime)(nil)
