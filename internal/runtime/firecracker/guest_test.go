package firecracker_test

import (
	"bytes"
	"fmt"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// EnvKernel names the guest kernel (vmlinux or bzImage) for the tests
// that boot a guest; .ci/run fetches the distribution's.
const EnvKernel = "CAIRN_GUEST_KERNEL"

// kernel returns the guest kernel, skipping (under CI=true: failing) t
// without one or without QEMU.
func kernel(t testing.TB) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	k := os.Getenv(EnvKernel)
	if k == "" {
		k = runtimetest.DefaultGuestKernel // where scripts/guest-kernel (.ci/run) puts it
	}
	if _, err := os.Stat(k); err != nil {
		fail("firecracker-with-fake (QEMU TCG guest): no guest kernel at %s (scripts/guest-kernel fetches it; or set %s)", k, EnvKernel)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		fail("firecracker-with-fake (QEMU TCG guest): qemu-system-x86_64 is not installed")
	}
	return k
}

var (
	guestOnce sync.Once
	guestDir  string
	guestErr  error
)

// testInitrd returns an initramfs whose /init is testdata/testguest.
func testInitrd(t testing.TB) string {
	t.Helper()
	guestOnce.Do(func() {
		guestDir, guestErr = os.MkdirTemp("", "cairn-fc-guest-")
		if guestErr != nil {
			return
		}
		bin := filepath.Join(guestDir, "init")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = "testdata/testguest"
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = fmt.Errorf("build testguest: %v\n%s", err, out)
			return
		}
		init, err := os.ReadFile(bin)
		if err != nil {
			guestErr = err
			return
		}
		var b bytes.Buffer
		w := newc{w: &b}
		w.add("dev", 0o040755, 0, nil)
		w.add("dev/console", 0o020600, 5<<8|1, nil)
		w.add("proc", 0o040555, 0, nil)
		w.add("init", 0o100755, 0, init)
		w.add("TRAILER!!!", 0, 0, nil)
		guestErr = os.WriteFile(filepath.Join(guestDir, "initrd"), b.Bytes(), 0o644)
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return filepath.Join(guestDir, "initrd")
}

// newc writes the kernel's initramfs format (cpio "newc", no checksums),
// enough for the few entries of the test guest; no cpio package is served.
type newc struct {
	w   *bytes.Buffer
	ino int
}

func (n *newc) add(name string, mode, rdev int, data []byte) {
	n.ino++
	fmt.Fprintf(n.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		n.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev>>8, rdev&0xff, len(name)+1, 0)
	n.w.WriteString(name + "\x00")
	n.pad()
	n.w.Write(data)
	n.pad()
}

func (n *newc) pad() {
	for n.w.Len()%4 != 0 {
		n.w.WriteByte(0)
	}
}
