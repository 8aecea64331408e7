package firecracker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/drivertest"
	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
	"github.com/cairnhq/cairn/internal/runtime/vmguest"
)

// tcgBoot bounds a boot to the first answer, as for the qemu-microvm
// driver under TCG: about 5 s on an idle two-core host, several times
// that on a busy one.
const tcgBoot = 120 * time.Second

// cairnGuest is cairn's own guest (package vmguest, the one the
// qemu-microvm driver boots), made to end its VM by a reboot as
// Firecracker needs.
func cairnGuest(t *testing.T, dir string, tcg bool) *vmguest.Builder {
	t.Helper()
	b, err := vmguest.New(vmguest.Config{Kernel: runtimetest.NeedQEMU(t), Init: runtimetest.GuestInit(t),
		State: filepath.Join(dir, "guest"), TCG: tcg, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformanceFirecrackerWithFakeQEMUTCG runs the
// driver conformance suite (drivertest, as runc and qemu-microvm) against
// the firecracker driver with cairn's real guest (guest init, initramfs,
// erofs root drive, status drive, tap bridged to the instance's eth0),
// driving a fake Firecracker: it validates every API request against the
// pinned spec and boots the guest under QEMU TCG. So it covers the
// driver, its API use and the guest, not Firecracker's own VMM or KVM.
func TestConformanceFirecrackerWithFakeQEMUTCG(t *testing.T) {
	bin := fake(t)
	p, err := fcspec.Find()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fcspec.EnvSpec, p)
	t.Log("covers: the firecracker driver against a fake Firecracker booting under QEMU TCG (cairn's guest; not real Firecracker, not KVM)")
	drivertest.RunWith(t, drivertest.Options{Boot: tcgBoot}, func(t *testing.T, dir string) cruntime.Driver {
		d, err := fc.NewCairn(bin, filepath.Join(dir, "fc"), cairnGuest(t, dir, true))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestConformanceRealFirecracker runs the same suite against a real
// Firecracker. It needs /dev/kvm and a firecracker binary, which these
// hosts do not have: this is the one skip scripts/testsum allows under
// CI=true.
func TestConformanceRealFirecracker(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("real Firecracker: no /dev/kvm on this host")
	}
	bin, err := exec.LookPath("firecracker")
	if err != nil {
		t.Skip("real Firecracker: no firecracker binary on $PATH")
	}
	drivertest.Run(t, func(t *testing.T, dir string) cruntime.Driver {
		d, err := fc.NewCairn(bin, filepath.Join(dir, "fc"), cairnGuest(t, dir, false))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
