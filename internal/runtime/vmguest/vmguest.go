// Package vmguest prepares cairn's guest for a microVM driver, the one
// piece of code the qemu-microvm and firecracker drivers share: the
// shared initramfs (the static guest init and its kernel modules, built
// once per Builder), and for each instance its root drive (the instance's
// root as an erofs image), its status drive, its initramfs with the
// instance's guest.Config appended, and a tap bridged to the namespace's
// eth0 so that the VM takes the address CNI gave the instance. The VMM is
// the driver's business. See docs/design.md, "MicroVMs".
package vmguest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/guest"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
)

// Config of a Builder.
type Config struct {
	Kernel  string        // the guest kernel, uncompressed vmlinux (a bzImage boots too, slower)
	Modules string        // its module tree; default: Kernel's directory + "/modules"
	Init    string        // the static cairn-guest-init binary
	State   string        // where the shared initramfs is written
	Mkfs    string        // default mkfs.erofs on $PATH
	Grace   time.Duration // the guest's SIGTERM-to-SIGKILL on a stop; default 10s
	// TCG: the VMs run under software emulation, and the kernel gets the
	// host's TSC rate (tsc_early_khz).
	TCG bool
	// Reboot: the guest ends its VM by rebooting (reboot=k on the command
	// line) rather than by powering off. Firecracker needs it.
	Reboot bool
}

// Builder makes the guests of one driver.
type Builder struct {
	cfg       Config
	initrd    string // the shared initramfs
	kernelSum string
	tscKHz    int
}

// New checks cfg, hashes the kernel and builds the shared initramfs.
func New(cfg Config) (*Builder, error) {
	var err error
	if cfg.Mkfs == "" {
		if cfg.Mkfs, err = exec.LookPath("mkfs.erofs"); err != nil {
			return nil, fmt.Errorf("microVM guest: %w (apt-get install erofs-utils)", err)
		}
	}
	if cfg.Kernel == "" {
		return nil, errors.New("microVM guest: no kernel (--kernel: scripts/guest-kernel fetches one)")
	}
	if cfg.Modules == "" {
		cfg.Modules = filepath.Join(filepath.Dir(cfg.Kernel), "modules")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	b := &Builder{cfg: cfg}
	if b.kernelSum, err = fileSHA256(cfg.Kernel); err != nil {
		return nil, fmt.Errorf("microVM guest: kernel: %w", err)
	}
	if cfg.TCG {
		b.tscKHz = hostTSCKHz()
	}
	init, err := os.ReadFile(cfg.Init)
	if err != nil {
		return nil, fmt.Errorf("microVM guest: guest init: %w", err)
	}
	if err := os.MkdirAll(cfg.State, 0o700); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := guest.Initramfs(&buf, init, cfg.Modules); err != nil {
		return nil, fmt.Errorf("microVM guest: initramfs: %w", err)
	}
	b.initrd = filepath.Join(cfg.State, "initramfs.cpio")
	if err := os.WriteFile(b.initrd+".tmp", buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(b.initrd+".tmp", b.initrd); err != nil {
		return nil, err
	}
	return b, nil
}

// Kernel is the guest kernel's path.
func (b *Builder) Kernel() string { return b.cfg.Kernel }

// KernelSHA256 is the hex sha256 of the guest kernel.
func (b *Builder) KernelSHA256() string { return b.kernelSum }

// Guest is one instance's prepared guest: the files in Dir and the tap.
type Guest struct {
	Dir     string // the instance's vm/ directory
	Kernel  string
	Initrd  string // the shared initramfs with the instance's config appended
	Root    string // root.erofs: read-only, serial guest.RootSerial
	Status  string // the status drive: read-write, serial guest.StatusSerial
	Tap     string // in the instance's network namespace
	MAC     string // the guest's
	Cmdline string // the kernel command line
}

// Dir is where an instance's guest files are, in its directory.
func Dir(instanceDir string) string { return filepath.Join(instanceDir, "vm") }

// Prepare builds the guest of spec: it bridges a tap to the namespace's
// eth0 (once; a restart in place finds it), builds the root drive from
// spec.Root, a fresh status drive and the initramfs.
func (b *Builder) Prepare(ctx context.Context, spec cruntime.Spec) (Guest, error) {
	vm := Dir(spec.Dir)
	if err := os.MkdirAll(vm, 0o700); err != nil {
		return Guest{}, err
	}
	n, err := plumb(ctx, spec.NetNS, filepath.Join(vm, "net.json"))
	if err != nil {
		return Guest{}, err
	}
	g := Guest{
		Dir: vm, Kernel: b.cfg.Kernel, Initrd: filepath.Join(vm, "initrd"),
		Root: filepath.Join(vm, "root.erofs"), Status: filepath.Join(vm, "status"),
		Tap: TapName, MAC: n.MAC, Cmdline: b.cmdline(),
	}
	for _, f := range []string{g.Root, g.Status} {
		os.Remove(f)
	}
	if err := derive.BuildErofs(ctx, b.cfg.Mkfs, spec.ID, g.Root, spec.Root); err != nil {
		return Guest{}, err
	}
	if err := os.WriteFile(g.Status, nil, 0o600); err != nil {
		return Guest{}, err
	}
	if err := os.Truncate(g.Status, guest.StatusSize); err != nil {
		return Guest{}, err
	}
	if err := b.writeInitrd(g.Initrd, guest.Config{
		Hostname: spec.ID, Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd, User: spec.User,
		Addr: n.Addr, Gateway: n.Gateway, GraceMS: b.cfg.Grace.Milliseconds(), Reboot: b.cfg.Reboot,
	}); err != nil {
		return Guest{}, err
	}
	return g, nil
}

// cmdline is the guest kernel's command line.
func (b *Builder) cmdline() string {
	c := "console=ttyS0 quiet panic=-1 pci=off tsc=reliable no_timer_check"
	if b.cfg.Reboot {
		c += " reboot=k"
	}
	if b.tscKHz > 0 {
		c += " tsc_early_khz=" + strconv.Itoa(b.tscKHz)
	}
	return c
}

// writeInitrd writes the shared initramfs with c appended.
func (b *Builder) writeInitrd(p string, c guest.Config) error {
	shared, err := os.ReadFile(b.initrd)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(shared); err != nil {
		f.Close()
		return err
	}
	if err := guest.AppendConfig(f, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ExitCode is the code the guest wrote to the status drive of the
// instance in instanceDir; ok false when it wrote none.
func ExitCode(instanceDir string) (code int, ok bool) {
	f, err := os.Open(filepath.Join(Dir(instanceDir), "status"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := io.ReadFull(f, b)
	return guest.ParseStatus(b[:n])
}

// Remove removes the drives and the initramfs of the instance in
// instanceDir (the tap goes with the network namespace).
func Remove(instanceDir string) error {
	var errs []error
	for _, f := range []string{"root.erofs", "initrd", "status"} {
		if err := os.Remove(filepath.Join(Dir(instanceDir), f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hostTSCKHz reads the host's TSC rate (the "cpu MHz" of /proc/cpuinfo,
// which is the TSC's on hosts with a known constant TSC frequency); 0 if
// unknown. Under TCG the guest's TSC runs at the host's, and its kernel's
// own calibration against the emulated PIT fails on a busy host (the boot
// then hangs): tsc_early_khz gives it the rate instead.
func hostTSCKHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return int(mhz * 1000)
		}
	}
	return 0
}
