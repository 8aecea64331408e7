package firecracker

import (
	"context"

	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/vmguest"
)

// CairnGuest is the GuestFunc of cairn's own guest, the one the
// qemu-microvm driver boots too: b (built with Reboot, since Firecracker
// has no ACPI power-off and exits when its guest reboots) prepares the
// initramfs with the instance's config, the root drive, the status drive
// and the tap.
func CairnGuest(b *vmguest.Builder) GuestFunc {
	return func(ctx context.Context, spec cruntime.Spec) (Guest, error) {
		g, err := b.Prepare(ctx, spec)
		if err != nil {
			return Guest{}, err
		}
		return Guest{
			Kernel: g.Kernel, Initrd: g.Initrd, RootDrive: g.Root, Tap: g.Tap, MAC: g.MAC, Cmdline: g.Cmdline,
			Drives: []GuestDrive{{ID: "status", Path: g.Status}},
		}, nil
	}
}

// NewCairn is a driver running bin that boots cairn's guest made by b.
// The app's exit code comes from the status drive, else from the
// console's last exit line.
func NewCairn(bin, stateDir string, b *vmguest.Builder) (*Driver, error) {
	d, err := New(bin, stateDir, CairnGuest(b))
	if err != nil {
		return nil, err
	}
	d.kernelSum = b.KernelSHA256()
	d.ExitCode = func(dir string, console []byte) (int, bool) {
		if code, ok := vmguest.ExitCode(dir); ok {
			return code, true
		}
		return GuestExitCode(dir, console)
	}
	return d, nil
}

// Accel is "kvm": Firecracker runs on KVM only.
func (d *Driver) Accel() string { return "kvm" }

// KernelSHA256 is the hex sha256 of the guest kernel ("" unless made by
// NewCairn).
func (d *Driver) KernelSHA256() string { return d.kernelSum }
