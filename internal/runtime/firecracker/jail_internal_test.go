package firecracker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStage puts a guest's files into a jail's root, by hard link on the
// same filesystem and by bind mount across filesystems (read-only where
// the drive is), and takes them out again leaving the sources as they
// were. The jailer itself is not on these hosts; this is what the driver
// does around it.
func TestStage(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (bind mounts)")
		}
		t.Skip("needs root (bind mounts)")
	}
	src := t.TempDir()
	other, err := os.MkdirTemp("/dev/shm", "cairn-fc-stage-") // tmpfs: another filesystem
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	write := func(dir, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := Guest{
		Kernel: write(src, "vmlinux"), Initrd: write(other, "initrd"), RootDrive: write(other, "root.erofs"),
		Tap: "tap0", Cmdline: "console=ttyS0",
		Drives: []GuestDrive{{ID: "status", Path: write(other, "status"), ReadOnly: false}, {ID: "cfg", Path: write(src, "cfg")}},
	}
	jail := filepath.Join(t.TempDir(), "firecracker", "fc-x")
	root := filepath.Join(jail, "root")
	got, err := stage(root, g, 1234, 1234)
	if err != nil {
		t.Fatal(err)
	}
	want := Guest{Kernel: "/kernel", Initrd: "/initrd", RootDrive: "/rootfs", Tap: "tap0", Cmdline: "console=ttyS0",
		Drives: []GuestDrive{{ID: "status", Path: "/drive_status"}, {ID: "cfg", Path: "/drive_cfg", ReadOnly: false}}}
	if got.Kernel != want.Kernel || got.Initrd != want.Initrd || got.RootDrive != want.RootDrive || len(got.Drives) != 2 ||
		got.Drives[0].Path != "/drive_status" || got.Drives[1].Path != "/drive_cfg" {
		t.Fatalf("staged guest %+v", got)
	}
	for in, from := range map[string]string{"kernel": g.Kernel, "initrd": g.Initrd, "rootfs": g.RootDrive, "drive_status": g.Drives[0].Path} {
		b, err := os.ReadFile(filepath.Join(root, in))
		if err != nil || string(b) != filepath.Base(from) {
			t.Errorf("%s in the jail: %q, %v", in, b, err)
		}
	}
	// The root drive crossed filesystems: a read-only bind mount.
	if f, err := os.OpenFile(filepath.Join(root, "rootfs"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		f.Close()
		t.Errorf("writing the jailed root drive: %v, want EROFS", err)
	}
	// The writable status drive belongs to the jailed uid.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "drive_status"), &st); err != nil || st.Uid != 1234 {
		t.Errorf("status drive owner %d, %v", st.Uid, err)
	}
	if err := unstage(jail); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jail); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("jail left behind: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), jail) {
		t.Fatal("a bind mount of the jail is left")
	}
	for _, p := range []string{g.Kernel, g.Initrd, g.RootDrive, g.Drives[0].Path, g.Drives[1].Path} {
		if b, err := os.ReadFile(p); err != nil || string(b) != filepath.Base(p) {
			t.Errorf("source %s after unstage: %q, %v", p, b, err)
		}
	}
	if _, err := stage(filepath.Join(t.TempDir(), "root"), Guest{Kernel: g.Kernel, RootDrive: g.RootDrive, Drives: []GuestDrive{{ID: "a-b", Path: g.Kernel}}}, 0, 0); !errors.Is(err, ErrBadID) {
		t.Errorf("a drive id outside [A-Za-z0-9_]: %v", err)
	}
}
