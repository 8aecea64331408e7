// Package qemu is the qemu-microvm driver: each instance is a QEMU
// `-M microvm` guest booting the host's kernel (a path given to the
// agent) with the shared initramfs of package guest, the instance's root
// as an erofs image on a read-only virtio-blk drive, a status drive for
// its exit code, and a virtio-net device on a tap bridged to the
// namespace's eth0, so that the host reaches a VM at the address it
// reaches a container at. KVM when it is usable (KVMUsable), TCG otherwise. QEMU
// runs under a small sh parent in a session of its own, in the instance's
// network namespace and in a cgroup bounding its memory and CPU; a new
// Driver over the same state finds it. See docs/design.md, "MicroVMs".
package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/guest"
	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/vmguest"
)

// Config of the driver.
type Config struct {
	Kernel  string        // the guest kernel, uncompressed vmlinux (a bzImage boots too, slower)
	Modules string        // its module tree, lib/modules/VERSION; default: Kernel's directory + "/modules"
	Init    string        // the static cairn-guest-init binary
	State   string        // the driver's own directory: the shared initramfs, instance links
	QEMU    string        // default qemu-system-x86_64 on $PATH
	Mkfs    string        // default mkfs.erofs on $PATH
	Accel   string        // "kvm" or "tcg"; "" is kvm when KVMUsable, else tcg
	Grace   time.Duration // the guest's SIGTERM-to-SIGKILL on a power-down; default 10s
}

// KVMUsable reports whether QEMU can boot a stock guest kernel on KVM:
// dev (/dev/kvm) opens read-write and a hardware backend, kvm_intel or
// kvm_amd, is loaded (a directory of sys, /sys/module). Another backend
// is not enough: kvm_pvm, which some cloud VMs offer without VT-x, runs
// only guest kernels built for PVM, and a stock kernel's boot fails there
// ("INTERNAL_ERROR in batch emul" in the host's log) without a word on
// the console.
func KVMUsable(dev, sys string) bool {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if fi, err := os.Stat(filepath.Join(sys, m)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// Driver runs instances as QEMU microVMs.
type Driver struct {
	cfg   Config
	guest *vmguest.Builder
}

var _ cruntime.Driver = (*Driver)(nil)

// New checks cfg, hashes the kernel and builds the shared initramfs.
func New(cfg Config) (*Driver, error) {
	var err error
	if cfg.QEMU == "" {
		if cfg.QEMU, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return nil, fmt.Errorf("qemu-microvm driver: %w (apt-get install qemu-system-x86)", err)
		}
	}
	switch cfg.Accel {
	case "":
		cfg.Accel = "tcg"
		if KVMUsable("/dev/kvm", "/sys/module") {
			cfg.Accel = "kvm"
		}
	case "kvm", "tcg":
	default:
		return nil, fmt.Errorf("qemu-microvm driver: accel %q: want kvm or tcg", cfg.Accel)
	}
	if err := os.MkdirAll(filepath.Join(cfg.State, "dirs"), 0o700); err != nil {
		return nil, err
	}
	g, err := vmguest.New(vmguest.Config{Kernel: cfg.Kernel, Modules: cfg.Modules, Init: cfg.Init, State: cfg.State,
		Mkfs: cfg.Mkfs, Grace: cfg.Grace, TCG: cfg.Accel == "tcg"})
	if err != nil {
		return nil, fmt.Errorf("qemu-microvm driver: %w", err)
	}
	return &Driver{cfg: cfg, guest: g}, nil
}

func (d *Driver) Name() string      { return "qemu-microvm" }
func (d *Driver) Isolation() string { return hostapi.IsolationMicroVM }

// Accel is the acceleration the VMs run with: "kvm" or "tcg".
func (d *Driver) Accel() string { return d.cfg.Accel }

// KernelSHA256 is the hex sha256 of the guest kernel.
func (d *Driver) KernelSHA256() string { return d.guest.KernelSHA256() }

// Files of an instance, in its directory's vm/.
func vmDir(dir string) string { return vmguest.Dir(dir) }

// link names the instance directory of id.
func (d *Driver) link(id string) string { return filepath.Join(d.cfg.State, "dirs", id) }

func (d *Driver) dirOf(id string) (string, error) {
	dir, err := os.Readlink(d.link(id))
	if err != nil {
		return "", cruntime.ErrNotFound
	}
	return dir, nil
}

// memory is the VM's memory in MiB: the limit, at least 128 MiB (the
// distribution's kernel with the initramfs needs about 70), 256 by default.
func memoryMiB(l hostapi.Limits) int64 {
	if l.MemoryBytes <= 0 {
		return 256
	}
	return max(128, (l.MemoryBytes+(1<<20)-1)>>20)
}

// vcpus: the CPU limit rounded up to whole vCPUs, at most the host's.
func vcpus(l hostapi.Limits) int {
	return min(runtime.NumCPU(), max(1, int(math.Ceil(l.CPU))))
}

// qemuOverhead is the memory QEMU needs beyond the guest's (its own, and
// the TCG translation cache of 64 MiB), added to the cgroup's limit.
const qemuOverhead = 256 << 20

// Start builds the instance's drives and initramfs and boots it; it
// returns once QEMU runs (the guest boots after; health is the agent's).
func (d *Driver) Start(ctx context.Context, spec cruntime.Spec) error {
	if _, err := os.Lstat(d.link(spec.ID)); err == nil { // it ran before
		if err := d.Delete(ctx, spec.ID, false); err != nil {
			return err
		}
	}
	vm := vmDir(spec.Dir)
	if err := os.MkdirAll(vm, 0o700); err != nil {
		return err
	}
	qmpSock := filepath.Join(vm, "qmp")
	if len(qmpSock) > 100 {
		return fmt.Errorf("qemu-microvm: %s: path too long for a unix socket", qmpSock)
	}
	for _, f := range []string{"qemu-exit", "pid", "qmp"} {
		os.Remove(filepath.Join(vm, f))
	}
	g, err := d.guest.Prepare(ctx, spec)
	if err != nil {
		return err
	}
	mem := memoryMiB(spec.Limits)
	cpus := vcpus(spec.Limits)
	cgs, err := cgroups(spec.ID, mem<<20+qemuOverhead, cpus)
	if err != nil {
		return err
	}
	if err := os.Symlink(spec.Dir, d.link(spec.ID)); err != nil {
		return err
	}
	log, err := os.OpenFile(spec.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// The sh parent joins the cgroups, runs QEMU in the namespace and
	// keeps its exit status (128+n for a signal n).
	script := `for g in $CGROUPS; do echo $$ > "$g/cgroup.procs" || exit 125; done
"$@"; echo $? > "$VM/qemu-exit.tmp" && mv "$VM/qemu-exit.tmp" "$VM/qemu-exit"`
	args := append([]string{"-c", script, "sh", "nsenter", "--net=" + spec.NetNS, "--", d.cfg.QEMU}, d.qemuArgs(g, mem, cpus)...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = []string{"VM=" + vm, "CGROUPS=" + strings.Join(cgs, " "), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vm, "shim"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	go cmd.Wait() // reaped here while this process lives; re-parented otherwise
	for {
		if _, err := os.Stat(qmpSock); err == nil {
			if _, err := os.Stat(filepath.Join(vm, "pid")); err == nil {
				return nil
			}
		}
		if !shimAlive(vm) {
			code, _ := os.ReadFile(filepath.Join(vm, "qemu-exit"))
			return fmt.Errorf("qemu %s exited (%s) before the VM ran: %s", spec.ID, strings.TrimSpace(string(code)), tail(spec.Log, 400))
		}
		select {
		case <-ctx.Done():
			d.Delete(context.WithoutCancel(ctx), spec.ID, true)
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// qemuArgs is QEMU's command line for the instance in vm.
func (d *Driver) qemuArgs(g vmguest.Guest, memMiB int64, cpus int) []string {
	vm := g.Dir
	accel, cpu := "tcg,tb-size=64", "max"
	if d.cfg.Accel == "kvm" {
		accel, cpu = "kvm", "host"
	}
	return []string{
		"-M", "microvm", "-accel", accel, "-cpu", cpu,
		"-m", strconv.FormatInt(memMiB, 10) + "M", "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", g.Kernel, "-initrd", g.Initrd, "-append", g.Cmdline,
		"-drive", "id=root,file=" + g.Root + ",format=raw,if=none,readonly=on",
		"-device", "virtio-blk-device,drive=root,serial=" + guest.RootSerial,
		"-drive", "id=status,file=" + g.Status + ",format=raw,if=none",
		"-device", "virtio-blk-device,drive=status,serial=" + guest.StatusSerial,
		"-netdev", "tap,id=net0,ifname=" + g.Tap + ",script=no,downscript=no,vhost=off",
		"-device", "virtio-net-device,netdev=net0,mac=" + g.MAC,
		"-serial", "stdio",
		"-qmp", "unix:" + filepath.Join(vm, "qmp") + ",server=on,wait=off",
		"-pidfile", filepath.Join(vm, "pid"),
	}
}

// shimAlive reports whether vm's sh parent still runs (its environment is
// not checked; its command line holds the vm dir, so a reused pid does
// not count).
func shimAlive(vm string) bool {
	b, err := os.ReadFile(filepath.Join(vm, "shim"))
	if err != nil {
		return false
	}
	return procRuns(strings.TrimSpace(string(b)), filepath.Join(vm, "initrd"))
}

// procRuns reports whether process pid runs with mark in its command
// line. A process that reads an empty command line (it is exiting, or
// between fork and exec) counts as running unless it is a zombie: the
// caller looks again.
func procRuns(pid, mark string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		return false
	}
	return len(cmdline) == 0 || bytes.Contains(cmdline, []byte(mark))
}

// qemuPid is the QEMU process of vm, 0 when it does not run.
func qemuPid(vm string) int {
	b, err := os.ReadFile(filepath.Join(vm, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(vm, "initrd"))) {
		return 0
	}
	return pid
}

// Signal: SIGTERM is an ACPI power-down through QMP (the guest's init
// stops the app: SIGTERM, then SIGKILL after the grace, and powers off);
// SIGKILL kills QEMU (exit code 137). No other signal reaches a VM.
func (d *Driver) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	dir, err := d.dirOf(id)
	if err != nil {
		return err
	}
	vm := vmDir(dir)
	if !shimAlive(vm) {
		return fmt.Errorf("qemu-microvm: instance %s does not run", id)
	}
	switch sig {
	case syscall.SIGKILL:
		pid := qemuPid(vm)
		if pid == 0 {
			return fmt.Errorf("qemu-microvm: instance %s: no QEMU process", id)
		}
		return syscall.Kill(pid, syscall.SIGKILL)
	case syscall.SIGTERM:
		return qmpRun(filepath.Join(vm, "qmp"), `{"execute":"system_powerdown"}`)
	default:
		return fmt.Errorf("qemu-microvm: signal %v: only SIGTERM (power-down) and SIGKILL reach a VM", sig)
	}
}

// qmpTimeout bounds one QMP exchange. QEMU serves one QMP client at a
// time and, under TCG on a loaded host, may answer late or not at all: a
// Stop must not hang on it (the Runtime then kills the VM).
const qmpTimeout = 5 * time.Second

// qmpRun runs one QMP command on the socket at p: it reads the greeting,
// negotiates capabilities and sends command, each answer within
// qmpTimeout in all; events in between are skipped.
func qmpRun(p, command string) error {
	c, err := net.DialTimeout("unix", p, qmpTimeout)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(qmpTimeout))
	dec := json.NewDecoder(c)
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		return fmt.Errorf("qmp greeting: %v", err)
	}
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, command} {
		if _, err := io.WriteString(c, cmd+"\n"); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		for {
			var r struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
			}
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if r.Error != nil {
				return fmt.Errorf("qmp %s: %s", cmd, r.Error.Desc)
			}
			if r.Return != nil {
				break
			}
			// an event: read on
		}
	}
	return nil
}

// Status: running while the sh parent runs; then the exit code is the one
// the guest wrote to its status drive, or QEMU's own status when the guest
// wrote none (137 when QEMU was killed), or unknown.
func (d *Driver) Status(ctx context.Context, id string) (cruntime.Status, error) {
	dir, err := d.dirOf(id)
	if err != nil {
		return cruntime.Status{}, err
	}
	vm := vmDir(dir)
	if shimAlive(vm) {
		return cruntime.Status{Running: true, Pid: qemuPid(vm)}, nil
	}
	return cruntime.Status{ExitCode: exitCode(dir)}, nil
}

func exitCode(dir string) *int {
	if code, ok := vmguest.ExitCode(dir); ok {
		return &code
	}
	vm := vmDir(dir)
	b, err := os.ReadFile(filepath.Join(vm, "qemu-exit"))
	if err != nil {
		return nil
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || code == 0 { // QEMU ended well, but the guest reported nothing
		return nil
	}
	return &code
}

// Delete kills QEMU (with force), removes its cgroups, its files and the
// link; the network namespace (with the tap and bridge in it) is the
// Runtime's.
func (d *Driver) Delete(ctx context.Context, id string, force bool) error {
	dir, err := d.dirOf(id)
	if err != nil {
		return nil
	}
	vm := vmDir(dir)
	if shimAlive(vm) {
		if !force {
			return fmt.Errorf("qemu-microvm: instance %s runs", id)
		}
		if pid := qemuPid(vm); pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		} else if b, err := os.ReadFile(filepath.Join(vm, "shim")); err == nil {
			// QEMU has not written its pid yet: its session goes whole.
			if shim, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && shim > 1 {
				syscall.Kill(-shim, syscall.SIGKILL)
			}
		}
		for deadline := time.Now().Add(10 * time.Second); shimAlive(vm); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("qemu-microvm: instance %s: QEMU still runs after SIGKILL", id)
			}
		}
	}
	var errs []error
	errs = append(errs, removeCgroups(id))
	errs = append(errs, vmguest.Remove(dir))
	if err := os.Remove(d.link(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tail is the end of a log file, for errors.
func tail(p string, n int64) string {
	b, _ := os.ReadFile(p)
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}
