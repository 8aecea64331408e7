// Package firecracker is the Firecracker microVM driver and a small
// client of Firecracker's API (its unix socket; types as the pinned spec
// ../shared/firecracker/firecracker.yaml defines them). The driver runs
// `firecracker --api-sock S` in the instance's network namespace and
// cgroup, configures machine, boot source, root drive (read-only) and tap
// through the API, and starts the VM. The guest's serial console, which
// Firecracker writes to its stdout, is the instance log. Like the runc
// driver, each VMM runs under a small sh parent in a session of its own
// that records the exit status, so instances outlive the agent and a new
// Driver adopts them. Package fakefc is the fake Firecracker the tests run
// it against (QEMU TCG guest); package fcspec validates against the spec.
package firecracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
)

// Guest is what a microVM driver boots for one instance; the runtime
// makes it (the shared guest side: kernel, initramfs with cairn's init,
// the release's erofs image, a tap in the instance's network namespace)
// and the qemu-microvm driver takes the same.
type Guest struct {
	Kernel    string // vmlinux (or bzImage)
	Initrd    string // initramfs with the guest init and its modules
	RootDrive string // the release's erofs image; attached read-only as the root device
	Tap       string // tap device in the instance's network namespace (Spec.NetNS)
	MAC       string // the guest's MAC, "" for one chosen by the VMM
	Cmdline   string // kernel command line, the app's config included
	// Drives after the root one (a status or scratch drive, a config
	// drive), attached in this order: /dev/vdb, /dev/vdc, ...
	Drives []GuestDrive
}

// GuestDrive is a further block device of the guest.
type GuestDrive struct {
	ID       string // [A-Za-z0-9_]
	Path     string
	ReadOnly bool
}

// GuestFunc makes the Guest of a prepared instance.
type GuestFunc func(ctx context.Context, spec cruntime.Spec) (Guest, error)

// Driver runs instances as Firecracker microVMs.
type Driver struct {
	Binary string    // firecracker (or the fake); "firecracker" on $PATH when empty
	State  string    // the driver's directory: dirs/ID links, sock/ID sockets
	Guest  GuestFunc // what to boot for a spec
	// ExitCode finds the app's exit code once the VMM ended normally
	// (the guest powered off or rebooted), from the instance's directory
	// (a status drive) or the tail of its console; GuestExitCode when nil.
	ExitCode func(instanceDir string, console []byte) (int, bool)
	// CgroupRoot is where cgroup controllers are mounted (/sys/fs/cgroup).
	CgroupRoot string
	// StartTimeout bounds waiting for the API socket (5s when zero).
	StartTimeout time.Duration
	// Jail, when set, runs the VMM under the jailer.
	Jail *Jail

	kernelSum string // of cairn's guest kernel (NewCairn)
}

var _ cruntime.Driver = (*Driver)(nil)

// New returns a driver running bin with its state in stateDir.
func New(bin, stateDir string, guest GuestFunc) (*Driver, error) {
	if bin == "" {
		bin = "firecracker"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("firecracker driver: %w", err)
	}
	if guest == nil {
		return nil, errors.New("firecracker driver: no guest (kernel, initramfs, root drive) configured")
	}
	for _, d := range []string{"dirs", "sock"} {
		if err := os.MkdirAll(filepath.Join(stateDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	d := &Driver{Binary: path, State: stateDir, Guest: guest, CgroupRoot: "/sys/fs/cgroup"}
	if filepath.Base(path) == "firecracker" {
		if j, err := exec.LookPath("jailer"); err == nil {
			d.Jail = &Jail{Binary: j, Base: filepath.Join(stateDir, "jail")}
		}
	}
	return d, nil
}

func (d *Driver) Name() string      { return "firecracker" }
func (d *Driver) Isolation() string { return hostapi.IsolationMicroVM }

func (d *Driver) link(id string) string { return filepath.Join(d.State, "dirs", id) }

// Sock is the API socket of instance id (short: unix socket paths are
// limited to 107 bytes).
func (d *Driver) Sock(id string) string {
	if d.Jail != nil {
		return filepath.Join(d.Jail.dir(d.Binary, id), "root", jailSock)
	}
	return filepath.Join(d.State, "sock", id)
}

func bundle(dir string) string { return filepath.Join(dir, "bundle") }

// MachineConfig is the machine an instance's limits give: vCPUs rounded
// up from the CPU quota (1..32), memory in MiB (128 when unlimited).
func MachineConfig(l hostapi.Limits) MachineConfiguration {
	vcpus := int(math.Ceil(l.CPU))
	vcpus = max(1, min(vcpus, 32))
	mem := int(l.MemoryBytes >> 20)
	if mem <= 0 {
		mem = 128
	}
	return MachineConfiguration{VcpuCount: vcpus, MemSizeMib: mem}
}

// Start runs the VMM, configures the VM through the API and starts it. It
// returns once InstanceStart succeeded: the guest is booting; whether the
// app came up is the health check's business.
func (d *Driver) Start(ctx context.Context, spec cruntime.Spec) error {
	if _, err := os.Lstat(d.link(spec.ID)); err == nil { // it ran before
		if err := d.Delete(ctx, spec.ID, false); err != nil {
			return err
		}
	}
	g, err := d.Guest(ctx, spec)
	if err != nil {
		return fmt.Errorf("firecracker %s: guest: %w", spec.ID, err)
	}
	b := bundle(spec.Dir)
	if err := os.MkdirAll(b, 0o700); err != nil {
		return err
	}
	machine := MachineConfig(spec.Limits)
	guestMem := int64(machine.MemSizeMib) << 20
	// argv is the VMM's command line, run by the sh parent once it joined
	// the cgroups (none with the jailer, which makes its own).
	var argv, cgs []string
	vmmLog := filepath.Join(b, "vmm.log")
	if d.Jail != nil {
		jail := d.Jail.dir(d.Binary, spec.ID)
		if err := unstage(jail); err != nil {
			return err
		}
		if g, err = stage(filepath.Join(jail, "root"), g, d.Jail.UID, d.Jail.GID); err != nil {
			unstage(jail)
			return fmt.Errorf("firecracker %s: jail: %w", spec.ID, err)
		}
		vmmLog = filepath.Join(jail, "root", "vmm.log")
		argv = d.Jail.args(d.Binary, spec.ID, spec.NetNS, d.CgroupRoot, spec.Limits, guestMem)
	} else {
		if cgs, err = makeCgroups(d.CgroupRoot, spec.ID, spec.Limits, guestMem); err != nil {
			return err
		}
		// Firecracker opens --log-path, it does not create it.
		f, err := os.OpenFile(vmmLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		f.Close()
		argv = []string{"nsenter", "--net=" + spec.NetNS, "--", d.Binary,
			"--api-sock", d.Sock(spec.ID), "--id", spec.ID, "--log-path", vmmLog}
	}
	if err := os.Symlink(spec.Dir, d.link(spec.ID)); err != nil {
		return err
	}
	for _, f := range []string{"pid", "exit", "exit.tmp"} {
		os.Remove(filepath.Join(b, f))
	}
	if err := os.WriteFile(filepath.Join(b, "console"), []byte(spec.Log), 0o600); err != nil {
		return err
	}
	os.Remove(d.Sock(spec.ID))
	logf, err := os.OpenFile(spec.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// The sh parent (named by the bundle, which Status looks for) joins
	// the cgroups (the VMM inherits them), runs the VMM and keeps its exit
	// status (128+n for a signal n).
	script := `for c in $CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 125; done
"$@" & echo $! > "$PIDF"; wait $!; echo $? > "$EXIT.tmp" && mv "$EXIT.tmp" "$EXIT"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, b}, argv...)...)
	cmd.Env = []string{
		"CGROUPS=" + strings.Join(cgs, " "),
		"PIDF=" + filepath.Join(b, "pid"), "EXIT=" + filepath.Join(b, "exit"),
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	}
	if p := os.Getenv("CAIRN_FIRECRACKER_SPEC"); p != "" { // for the fake
		cmd.Env = append(cmd.Env, "CAIRN_FIRECRACKER_SPEC="+p)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b, "shim"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	go cmd.Wait() // reaped here while this process lives; re-parented otherwise
	if err := d.configure(ctx, spec, g, machine); err != nil {
		d.Delete(context.WithoutCancel(ctx), spec.ID, true)
		return fmt.Errorf("firecracker %s: %w (%s)", spec.ID, err, tail(vmmLog, 300))
	}
	return nil
}

// configure waits for the API socket, then puts the machine, the boot
// source, the root drive and the tap, and starts the VM.
func (d *Driver) configure(ctx context.Context, spec cruntime.Spec, g Guest, m MachineConfiguration) error {
	c := NewClient(d.Sock(spec.ID))
	timeout := d.StartTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		info, err := c.Info(ctx)
		if err == nil {
			if info.State != StateNotStarted {
				return fmt.Errorf("a fresh VMM is in state %q", info.State)
			}
			break
		}
		if !d.alive(spec.Dir) {
			return errors.New("the VMM exited before its API answered")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API socket: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	steps := []func() error{
		func() error { return c.PutMachineConfig(ctx, m) },
		func() error {
			return c.PutBootSource(ctx, BootSource{KernelImagePath: g.Kernel, InitrdPath: g.Initrd, BootArgs: g.Cmdline})
		},
		func() error {
			return c.PutDrive(ctx, Drive{DriveID: "rootfs", PathOnHost: g.RootDrive, IsRootDevice: true, IsReadOnly: true})
		},
		func() error {
			for _, e := range g.Drives {
				if err := c.PutDrive(ctx, Drive{DriveID: e.ID, PathOnHost: e.Path, IsReadOnly: e.ReadOnly}); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			return c.PutNetworkInterface(ctx, NetworkInterface{IfaceID: "eth0", HostDevName: g.Tap, GuestMac: g.MAC})
		},
		func() error { return c.Action(ctx, ActionInstanceStart) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func readPid(dir, name string) int {
	b, err := os.ReadFile(filepath.Join(bundle(dir), name))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// alive reports whether the sh parent of the instance in dir still runs
// (its command line names the instance's bundle, so a reused pid does
// not count).
func (d *Driver) alive(dir string) bool {
	pid := readPid(dir, "shim")
	if pid == 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte("\x00"+bundle(dir)+"\x00"))
}

// GuestExitMarker starts the console line in which the guest init reports
// the app's exit status before it powers off: "cairn-guest: exit 3".
const GuestExitMarker = "cairn-guest: exit "

var exitRE = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(GuestExitMarker) + `(\d{1,3})\r?$`)

// GuestExitCode finds the last exit marker in a console tail.
func GuestExitCode(_ string, console []byte) (int, bool) {
	m := exitRE.FindAllSubmatch(console, -1)
	if len(m) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(m[len(m)-1][1]))
	return n, err == nil && n < 256
}

// exitCode is the instance's exit code once the VMM ended: the app's (as
// the guest reported it) when the VM powered off, else the VMM's status.
func (d *Driver) exitCode(spec string) *int {
	b, err := os.ReadFile(filepath.Join(bundle(spec), "exit"))
	if err != nil {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	if n == 0 {
		parse := d.ExitCode
		if parse == nil {
			parse = GuestExitCode
		}
		logPath, _ := os.ReadFile(filepath.Join(bundle(spec), "console"))
		if code, ok := parse(spec, tailBytes(string(logPath), 4096)); ok {
			n = code
		}
	}
	return &n
}

// Status: running while the sh parent runs; then the recorded exit code.
func (d *Driver) Status(ctx context.Context, id string) (cruntime.Status, error) {
	dir, err := os.Readlink(d.link(id))
	if err != nil {
		return cruntime.Status{}, cruntime.ErrNotFound
	}
	if code := d.exitCode(dir); code != nil {
		return cruntime.Status{ExitCode: code}, nil
	}
	if d.alive(dir) {
		return cruntime.Status{Running: true, Pid: readPid(dir, "pid")}, nil
	}
	return cruntime.Status{}, nil
}

// Signal: SIGTERM and SIGINT become SendCtrlAltDel (the guest init stops
// the app); SIGKILL, and any other signal, goes to the VMM process.
func (d *Driver) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	dir, err := os.Readlink(d.link(id))
	if err != nil {
		return cruntime.ErrNotFound
	}
	if !d.alive(dir) {
		return fmt.Errorf("firecracker %s: not running", id)
	}
	if sig == syscall.SIGTERM || sig == syscall.SIGINT {
		err := NewClient(d.Sock(id)).Action(ctx, ActionSendCtrlAltDel)
		var f *Fault
		if err == nil || !errors.As(err, &f) {
			return err
		}
		// Not started yet (a fault): nothing to shut down gracefully.
	}
	pid := readPid(dir, "pid")
	if pid == 0 {
		return fmt.Errorf("firecracker %s: no pid yet", id)
	}
	return syscall.Kill(pid, sig)
}

// Delete kills a running VMM when forced, then removes the cgroups, the
// socket and the link.
func (d *Driver) Delete(ctx context.Context, id string, force bool) error {
	dir, err := os.Readlink(d.link(id))
	if err != nil {
		removeCgroups(d.CgroupRoot, id)
		return nil
	}
	if d.alive(dir) && d.exitCode(dir) == nil {
		if !force {
			return fmt.Errorf("firecracker %s: running", id)
		}
		if pid := readPid(dir, "pid"); pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for deadline := time.Now().Add(10 * time.Second); d.alive(dir); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				if pid := readPid(dir, "shim"); pid != 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				break
			}
		}
	}
	os.Remove(d.Sock(id))
	os.Remove(d.Sock(id) + ".qmp")
	if d.Jail != nil {
		if err := unstage(d.Jail.dir(d.Binary, id)); err != nil {
			return err
		}
	}
	if err := os.Remove(d.link(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// A cgroup left busy is removed by the next Delete of the id.
	return removeCgroups(d.CgroupRoot, id)
}

func tailBytes(p string, n int64) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, 0)
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return b[:k]
}

func tail(p string, n int64) string { return strings.TrimSpace(string(tailBytes(p, n))) }
