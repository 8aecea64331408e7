package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cairnhq/cairn/internal/meta"
)

// Locks, leases and deletion claims are tied to a live process. Their
// holder names the process instance (its owner, "HOST/PID/NONCE": the host
// name with the PID namespace, the PID, and a nonce drawn at the process's
// start) and what it does ("…/gc-RANDOM", "…/publish-RANDOM"). A process
// that restarts on the same host (and PID namespace) drops, at start
// (ReleaseDead) and whenever the collector finds its lock held, every lock,
// lease and deletion claim whose owner is an instance of this host that is
// no longer alive (its PID is gone, or is its own PID under another
// nonce). Nothing such a holder held is in use any more: a dead process
// deletes no bytes and publishes nothing. A live process is never judged
// dead: within one PID namespace kill(pid, 0) finds it. Holders on other
// hosts expire.
//
// A publish's lease (Hold) carries its owner too, so a restart also ends the
// leases of the publishes the dead instance had in flight. The leases of
// registry upload sessions ("upload-…") belong to sessions, not processes:
// they are left to expire.

// processOwner is this process instance's owner id. Its HOST is the host
// name and, on Linux, the PID namespace ("name~pid:[4026531836]"): two
// containers may share a host name (host networking) but not see each
// other's PIDs, and a PID is judged only where it can be seen.
var processOwner = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		host += "~" + ns
	}
	return fmt.Sprintf("%s/%d/%s", strings.ReplaceAll(host, "/", "_"), os.Getpid(), randomID())
})

// ProcessOwner returns the owner id of this process instance,
// "HOST/PID/NONCE": the default gc.Config.Owner, and the owner of the
// leases Hold takes.
func ProcessOwner() string { return processOwner() }

// ValidOwner reports whether s starts with an owner id, "HOST/PID/NONCE".
func ValidOwner(s string) bool {
	_, ok := parseOwner(s)
	return ok
}

// owner is a parsed owner id.
type owner struct {
	host  string
	pid   int
	nonce string
}

// parseOwner parses "HOST/PID/NONCE", alone or as the start of a holder
// ("HOST/PID/NONCE/WHAT"); ok is false for other holders.
func parseOwner(s string) (o owner, ok bool) {
	parts := strings.SplitN(s, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[2] == "" {
		return owner{}, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{parts[0], pid, parts[2]}, true
}

// dead reports whether o is an instance of self's host that is not alive:
// self itself under an earlier nonce (a restart with the same PID, as in a
// container), or a PID that no process has any more. Owners on other hosts
// are never judged: their locks expire.
func (o owner) dead(self owner) bool {
	switch {
	case o.host != self.host:
		return false
	case o.pid == self.pid:
		return o.nonce != self.nonce
	}
	err := syscall.Kill(o.pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// ReleaseDead drops every lock, lease and deletion claim whose holder is an
// instance of self's host (self is an owner id, ProcessOwner()) that is no
// longer alive, and returns how many holders it dropped.
func ReleaseDead(ctx context.Context, l meta.Leases, self string) (int, error) {
	me, ok := parseOwner(self)
	if !ok {
		return 0, fmt.Errorf("lease: owner %q is not HOST/PID/NONCE", self)
	}
	holders, err := l.Holders(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range holders {
		if o, ok := parseOwner(h); !ok || !o.dead(me) {
			continue
		}
		if err := l.DropHolder(ctx, h); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
