package qemu_test

import (
	"path/filepath"
	"testing"
	"time"

	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/drivertest"
	"github.com/cairnhq/cairn/internal/runtime/qemu"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// tcgBoot bounds a boot to the first answer: a TCG boot takes about 5 s
// on an idle two-core host, and several times that on a busy one.
const tcgBoot = 120 * time.Second

func newDriver(t *testing.T, dir string) *qemu.Driver {
	t.Helper()
	d, err := qemu.New(qemu.Config{Kernel: runtimetest.NeedQEMU(t), Init: runtimetest.GuestInit(t), State: filepath.Join(dir, "qemu")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestQEMUConformance boots real microVMs (KVM where /dev/kvm exists, else
// TCG): four boots. Its name differs from runc's TestConformance: the
// test network's bridge and subnet come from the test's name, and go test
// runs the two packages at once.
func TestQEMUConformance(t *testing.T) {
	drivertest.RunWith(t, drivertest.Options{Boot: tcgBoot}, func(t *testing.T, dir string) cruntime.Driver {
		d := newDriver(t, dir)
		t.Logf("qemu-microvm, accel %s, kernel sha256 %s", d.Accel(), d.KernelSHA256())
		return d
	})
}
