// Package guest is the inside of a microVM, shared by every microVM
// driver (qemu-microvm now, Firecracker later): the contract between the
// host and the guest (Config, the drives, the console line that reports
// the exit code), the initramfs that carries the init and the kernel
// modules it loads (Initramfs), and the init's supervision of the app
// (Supervise). cmd/cairn-guest-init is the init itself; Boot is its body.
// See docs/design.md, "MicroVMs".
package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// The contract between a driver and the guest.
const (
	// ConfigPath is where the instance's Config is in the initramfs: a
	// driver appends a cpio archive holding it to the shared one.
	ConfigPath = "cairn/config.json"
	// ModulesPath lists the kernel modules the init loads, in order,
	// one file name under lib/modules/ a line.
	ModulesPath = "cairn/modules"
	// RootSerial and StatusSerial are the virtio-blk serials of the
	// drives: the release's erofs image (read-only) and a small raw drive
	// the init writes the app's exit code to ("%d\n", padded to 512 bytes).
	RootSerial   = "cairn-root"
	StatusSerial = "cairn-status"
	// ExitPrefix starts the console line that reports the exit code.
	ExitPrefix = "cairn-guest: exit "
	// StatusSize is the status drive's size in bytes (big enough that
	// the kernel's partition scan finds nothing amiss).
	StatusSize = 1 << 20
)

// Config is one instance, as the guest's init gets it.
type Config struct {
	Hostname string   `json:"hostname"`
	Args     []string `json:"args"`
	Env      []string `json:"env,omitempty"` // KEY=value
	Cwd      string   `json:"cwd,omitempty"`
	User     string   `json:"user,omitempty"`    // "uid[:gid]", "" is 0:0
	Addr     string   `json:"addr,omitempty"`    // eth0's address, CIDR; "" leaves eth0 down
	Gateway  string   `json:"gateway,omitempty"` // default route; "" for none (no egress)
	GraceMS  int64    `json:"grace_ms"`          // SIGTERM to SIGKILL on shutdown
	// Reboot ends the VM by a reboot instead of a power-off: Firecracker
	// has no ACPI power-off, and its VMM exits when the guest reboots
	// (with reboot=k on the command line).
	Reboot bool `json:"reboot,omitempty"`
}

var hostnameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ParseConfig decodes and checks a Config: unknown keys, a bad address,
// user or hostname, or no command are errors.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("guest config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("guest config: trailing data")
	}
	if err := c.Check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Check reports what is wrong with c.
func (c Config) Check() error {
	if !hostnameRE.MatchString(c.Hostname) {
		return fmt.Errorf("guest config: hostname %q: want [a-z0-9-]", c.Hostname)
	}
	if len(c.Args) == 0 || c.Args[0] == "" {
		return errors.New("guest config: no command")
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("guest config: env %q: want KEY=value", e)
		}
	}
	if c.Addr != "" {
		if ip, _, err := net.ParseCIDR(c.Addr); err != nil || ip.To4() == nil {
			return fmt.Errorf("guest config: addr %q: want an IPv4 CIDR", c.Addr)
		}
	}
	if c.Gateway != "" {
		if ip := net.ParseIP(c.Gateway); ip == nil || ip.To4() == nil {
			return fmt.Errorf("guest config: gateway %q: want an IPv4 address", c.Gateway)
		}
		if c.Addr == "" {
			return errors.New("guest config: a gateway without an address")
		}
	}
	if _, _, err := ParseUser(c.User); err != nil {
		return err
	}
	if c.GraceMS < 0 {
		return fmt.Errorf("guest config: grace_ms %d", c.GraceMS)
	}
	return nil
}

// ParseUser parses "uid[:gid]" (numeric); "" is 0:0, and a uid alone
// runs with gid = uid.
func ParseUser(u string) (uid, gid uint32, err error) {
	if u == "" {
		return 0, 0, nil
	}
	us, gs, hasGid := strings.Cut(u, ":")
	n, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: want uid[:gid], numeric", u)
	}
	m := n
	if hasGid {
		if m, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("user %q: want uid[:gid], numeric", u)
		}
	}
	return uint32(n), uint32(m), nil
}

// ParseStatus reads the status drive's content: the exit code the init
// wrote, ok false when it wrote none.
func ParseStatus(b []byte) (code int, ok bool) {
	line, _, found := bytes.Cut(b, []byte("\n"))
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(string(line))
	if err != nil || n < 0 || n > 255 {
		return 0, false
	}
	return n, true
}
