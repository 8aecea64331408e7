package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Boot is the init (PID 1) of a microVM guest, run from the initramfs:
// it loads the modules, mounts the root (the erofs drive under a tmpfs
// overlay), brings up eth0, sets the hostname, runs the app under
// Supervise, writes its exit code to the status drive and the console,
// and powers off. It does not return.
func Boot() {
	unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755")
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err == nil { // the initramfs has no /dev/console: the kernel gave init no stdio
		for fd := 0; fd <= 2; fd++ {
			unix.Dup2(int(console.Fd()), fd)
		}
	} else {
		console = os.Stdout
	}
	code, status := 255, (*os.File)(nil)
	if err := boot(console, &status, &code); err != nil {
		fmt.Fprintf(console, "cairn-guest: boot failed: %v\n", err)
	}
	if status != nil {
		b := make([]byte, 512)
		copy(b, fmt.Sprintf("%d\n", code))
		status.WriteAt(b, 0)
		status.Sync()
	}
	fmt.Fprintf(console, "%s%d\n", ExitPrefix, code)
	unix.Sync()
	if reboot {
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// reboot: the VM ends by a reboot rather than a power-off (Config.Reboot,
// for Firecracker, whose VMM exits when its guest reboots).
var reboot bool

func boot(console *os.File, status **os.File, code *int) error {
	for _, m := range []struct{ src, dst, typ string }{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}} {
		if err := unix.Mount(m.src, m.dst, m.typ, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	b, err := os.ReadFile("/" + ConfigPath)
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return err
	}
	reboot = cfg.Reboot
	if err := loadModules(); err != nil {
		return err
	}
	drives, err := waitDrives(10 * time.Second)
	if err != nil {
		return err
	}
	if *status, err = os.OpenFile(drives[StatusSerial], os.O_RDWR|os.O_SYNC, 0); err != nil {
		return err
	}
	if err := mountRoot(drives[RootSerial]); err != nil {
		return err
	}
	if err := network(cfg); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	sigs := make(chan os.Signal, 8)
	cad := ctrlAltDel(sigs, console)
	if err := powerButton(sigs, console); err != nil && !cad {
		fmt.Fprintf(console, "cairn-guest: no power button, shutdown only by the host killing the VM: %v\n", err)
	}
	if err := switchRoot("/mnt/root"); err != nil {
		return err
	}
	*code = Supervise(App{Args: cfg.Args, Env: cfg.Env, Cwd: cfg.Cwd, User: cfg.User, Out: console,
		Grace: time.Duration(cfg.GraceMS) * time.Millisecond}, sigs, console)
	return nil
}

func loadModules() error {
	list, err := os.ReadFile("/" + ModulesPath)
	if err != nil {
		return err
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	for _, name := range strings.Fields(string(list)) {
		f, err := os.Open(filepath.Join("/lib/modules", name))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), ModuleParams(string(cmdline), modName(name)), 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", name, err)
		}
	}
	return nil
}

// ModuleParams are the parameters the kernel command line gives module
// mod ("mod.key=value" words), as modprobe passes them: the kernel applies
// them itself only to built-in code. Firecracker names its virtio-mmio
// devices so (virtio_mmio.device=4K@0xd0000000:5), and this kernel has
// virtio_mmio as a module. Quoted values are not supported.
func ModuleParams(cmdline, mod string) string {
	var ps []string
	for _, w := range strings.Fields(cmdline) {
		k, v, hasV := strings.Cut(w, "=")
		m, key, ok := strings.Cut(k, ".")
		if !ok || key == "" || strings.ReplaceAll(m, "-", "_") != mod {
			continue
		}
		if hasV {
			key += "=" + v
		}
		ps = append(ps, key)
	}
	return strings.Join(ps, " ")
}

// waitDrives finds the virtio-blk drives by serial: serial → /dev/vdX.
func waitDrives(timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		found := map[string]string{}
		des, _ := os.ReadDir("/sys/block")
		for _, de := range des {
			s, err := os.ReadFile(filepath.Join("/sys/block", de.Name(), "serial"))
			if err == nil {
				found[strings.TrimSpace(string(s))] = "/dev/" + de.Name()
			}
		}
		if found[RootSerial] == "" || found[StatusSerial] == "" {
			var names []string
			for _, de := range des {
				names = append(names, de.Name())
			}
			byContent("/dev", names, found)
		}
		if found[RootSerial] != "" && found[StatusSerial] != "" {
			for _, p := range found {
				if _, err := os.Stat(p); err != nil {
					goto wait
				}
			}
			return found, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("drives %s and %s: found %v after %v", RootSerial, StatusSerial, found, timeout)
		}
	wait:
		time.Sleep(5 * time.Millisecond)
	}
}

// byContent finds the drives a VMM gave no serials we know (Firecracker
// names a drive by its file, not by its id): the root drive holds an
// erofs superblock, the status drive is StatusSize bytes without one.
// The block devices named are looked for in devDir.
func byContent(devDir string, names []string, found map[string]string) {
	for _, name := range names {
		if !strings.HasPrefix(name, "vd") {
			continue
		}
		dev := filepath.Join(devDir, name)
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		sb := make([]byte, 4)
		_, err = f.ReadAt(sb, erofsMagicOffset)
		size, _ := f.Seek(0, io.SeekEnd)
		f.Close()
		switch {
		case err == nil && binary.LittleEndian.Uint32(sb) == erofsMagic:
			if found[RootSerial] == "" {
				found[RootSerial] = dev
			}
		case size == StatusSize:
			if found[StatusSerial] == "" {
				found[StatusSerial] = dev
			}
		}
	}
}

// The erofs superblock's magic and where it is.
const (
	erofsMagic       = 0xE0F5E1E2
	erofsMagicOffset = 1024
)

// mountRoot mounts dev (erofs, read-only) under a tmpfs upper layer at
// /mnt/root, with /proc, /sys, /dev and /tmp in it.
func mountRoot(dev string) error {
	for _, d := range []string{"/mnt/lower", "/mnt/rw", "/mnt/root"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount(dev, "/mnt/lower", "erofs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount root drive %s (erofs): %w", dev, err)
	}
	if err := unix.Mount("tmpfs", "/mnt/rw", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs upper: %w", err)
	}
	for _, d := range []string{"/mnt/rw/upper", "/mnt/rw/work"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("overlay", "/mnt/root", "overlay", 0, "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work"); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	for _, m := range []struct{ dst, typ string }{{"proc", "proc"}, {"sys", "sysfs"}, {"dev", "devtmpfs"}, {"tmp", "tmpfs"}} {
		dst := filepath.Join("/mnt/root", m.dst)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.typ, dst, m.typ, unix.MS_NOSUID, ""); err != nil {
			return fmt.Errorf("mount %s: %w", dst, err)
		}
	}
	for _, m := range []struct{ dst, typ, opts string }{{"dev/pts", "devpts", "newinstance,ptmxmode=0666"}, {"dev/shm", "tmpfs", "mode=1777"}} {
		dst := filepath.Join("/mnt/root", m.dst)
		os.MkdirAll(dst, 0o755)
		if err := unix.Mount(m.typ, dst, m.typ, unix.MS_NOSUID|unix.MS_NOEXEC, m.opts); err != nil {
			return fmt.Errorf("mount %s: %w", dst, err)
		}
	}
	return nil
}

// switchRoot makes dir the root: move it over /, chroot (the initramfs
// stays in memory, a few MiB).
func switchRoot(dir string) error {
	if err := os.Chdir(dir); err != nil {
		return err
	}
	if err := unix.Mount(dir, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return os.Chdir("/")
}

// network brings up lo, and eth0 with cfg's address and gateway.
func network(cfg Config) error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if cfg.Addr == "" {
		return nil
	}
	var eth netlink.Link
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if eth, err = netlink.LinkByName("eth0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("eth0: %w", err)
		}
	}
	addr, err := netlink.ParseAddr(cfg.Addr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("eth0 address: %w", err)
	}
	if err := netlink.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	if cfg.Gateway != "" {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(cfg.Gateway)}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

// ctrlAltDel turns the kernel's Ctrl+Alt+Del reboot off, so that the key
// (Firecracker's SendCtrlAltDel) reaches PID 1 as SIGINT, and sends
// SIGTERM on sigs when it does: the app is stopped as on a power-down.
func ctrlAltDel(sigs chan<- os.Signal, console *os.File) bool {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		fmt.Fprintf(console, "cairn-guest: ctrl-alt-del stays a reboot: %v\n", err)
		return false
	}
	intc := make(chan os.Signal, 1)
	signal.Notify(intc, syscall.SIGINT)
	go func() {
		for range intc {
			fmt.Fprintln(console, "cairn-guest: ctrl-alt-del: stopping the app")
			sigs <- syscall.SIGTERM
		}
	}()
	return true
}

// powerButton sends SIGTERM on sigs when the ACPI power button is pressed
// (QMP system_powerdown on the host).
func powerButton(sigs chan<- os.Signal, console *os.File) error {
	des, err := os.ReadDir("/sys/class/input")
	if err != nil {
		return err
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), "event") {
			continue
		}
		name, _ := os.ReadFile(filepath.Join("/sys/class/input", de.Name(), "device/name"))
		if !strings.Contains(string(name), "Power Button") {
			continue
		}
		f, err := os.Open("/dev/input/" + de.Name())
		if err != nil {
			return err
		}
		go func() {
			const evKey, keyPower = 1, 116
			buf := make([]byte, 24) // struct input_event on 64-bit: timeval, type, code, value
			for {
				if _, err := f.Read(buf); err != nil {
					return
				}
				typ, code := binary.LittleEndian.Uint16(buf[16:]), binary.LittleEndian.Uint16(buf[18:])
				if typ == evKey && code == keyPower && binary.LittleEndian.Uint32(buf[20:]) == 1 {
					fmt.Fprintln(console, "cairn-guest: power button: stopping the app")
					sigs <- syscall.SIGTERM
				}
			}
		}()
		return nil
	}
	return errors.New("no input device named Power Button")
}
