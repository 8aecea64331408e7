package firecracker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
)

// bootTimeout is sized for TCG on a busy two-core host.
const bootTimeout = 90 * time.Second

// testCmdline is the test guest's kernel command line (the TSC options
// avoid the hangs at TSC calibration seen under TCG).
var testCmdline = "console=ttyS0 reboot=k panic=1 tsc=reliable no_timer_check quiet" + tscKHz()

// tscKHz gives the guest the host's TSC rate: calibrating it under TCG on
// a loaded host fails or hangs.
func tscKHz() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "cpu MHz"); ok {
			v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			if mhz, err := strconv.ParseFloat(v, 64); err == nil {
				return fmt.Sprintf(" tsc_early_khz=%d", int(mhz*1000))
			}
		}
	}
	return ""
}

// TestBootWithFake boots a guest through the fake's API and drives the
// post-boot endpoints: pause, snapshot, resume, Ctrl+Alt+Del, and a
// snapshot loaded into a fresh process.
func TestBootWithFake(t *testing.T) {
	t.Log("firecracker-with-fake (QEMU TCG guest): the boot and post-boot endpoints with a real guest kernel under QEMU TCG")
	kern := kernel(t)
	need(t)
	initrd := testInitrd(t)
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.img")
	if err := os.WriteFile(root, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := testNetns(t, "tap0")
	p := startFake(t, ns, "qemu-system-x86_64")
	c := fc.NewClient(p.sock)
	for _, err := range []error{
		c.PutMachineConfig(ctx, fc.MachineConfiguration{VcpuCount: 1, MemSizeMib: 128}),
		c.PutBootSource(ctx, fc.BootSource{KernelImagePath: kern, InitrdPath: initrd, BootArgs: testCmdline}),
		c.PutDrive(ctx, fc.Drive{DriveID: "rootfs", PathOnHost: root, IsRootDevice: true, IsReadOnly: true}),
		c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth0", HostDevName: "tap0", GuestMac: "06:00:0a:59:00:02"}),
		c.Action(ctx, fc.ActionInstanceStart),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if info, err := c.Info(ctx); err != nil || info.State != fc.StateRunning {
		t.Fatalf("after InstanceStart: %+v, %v", info, err)
	}
	wantFault(t, "InstanceStart twice", c.Action(ctx, fc.ActionInstanceStart), "after starting")
	wantFault(t, "boot source after the boot", c.PutBootSource(ctx, fc.BootSource{KernelImagePath: kern}), "after starting")
	p.waitOutput(t, "testguest: up", bootTimeout)

	wantFault(t, "snapshot of a running VM", c.CreateSnapshot(ctx, fc.SnapshotCreateParams{MemFilePath: filepath.Join(dir, "mem"), SnapshotPath: filepath.Join(dir, "vmstate")}), "not paused")
	if err := c.PatchVM(ctx, fc.VMPaused); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx); info.State != fc.StatePaused {
		t.Fatalf("after PATCH /vm Paused: %q", info.State)
	}
	snap := fc.SnapshotCreateParams{MemFilePath: filepath.Join(dir, "mem"), SnapshotPath: filepath.Join(dir, "vmstate"), SnapshotType: "Full"}
	if err := c.CreateSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(snap.SnapshotPath); err != nil || st.Size() == 0 {
		t.Fatalf("snapshot file: %v", err)
	}
	if err := c.PatchVM(ctx, fc.VMResumed); err != nil {
		t.Fatal(err)
	}
	if err := c.Action(ctx, fc.ActionSendCtrlAltDel); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t, bootTimeout); code != 0 {
		t.Fatalf("fake exited %d after the guest's reboot", code)
	}
	if out := p.out.String(); !strings.Contains(out, "cairn-guest: exit 0") {
		t.Fatalf("no exit report on the console:\n%s", out)
	}

	// The snapshot, loaded into a fresh process, runs on: it answers
	// Ctrl+Alt+Del as the first one did.
	p2 := startFake(t, ns, "qemu-system-x86_64")
	c2 := fc.NewClient(p2.sock)
	if err := c2.LoadSnapshot(ctx, fc.SnapshotLoadParams{
		SnapshotPath: snap.SnapshotPath, MemBackend: &fc.MemoryBackend{BackendType: "File", BackendPath: snap.MemFilePath},
		ResumeVM: true, NetworkOverrides: []fc.NetworkOverride{{IfaceID: "eth0", HostDevName: "tap0"}},
	}); err != nil {
		t.Fatal(err)
	}
	if info, err := c2.Info(ctx); err != nil || info.State != fc.StateRunning {
		t.Fatalf("after snapshot/load: %+v, %v", info, err)
	}
	if err := c2.Action(ctx, fc.ActionSendCtrlAltDel); err != nil {
		t.Fatal(err)
	}
	p2.waitOutput(t, "cairn-guest: exit 0", bootTimeout)
	if code := p2.waitExit(t, bootTimeout); code != 0 {
		t.Fatalf("restored fake exited %d", code)
	}
}
