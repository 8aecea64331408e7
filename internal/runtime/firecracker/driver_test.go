package firecracker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

func newFakeDriver(t *testing.T, state string, guest fc.GuestFunc) *fc.Driver {
	t.Helper()
	p, err := fcspec.Find()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv(fcspec.EnvSpec, p)
	d, err := fc.New(fake(t), state, guest)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// instance prepares a spec: a directory, a network namespace with tap0.
func instance(t *testing.T, d *fc.Driver, id string, env ...string) cruntime.Spec {
	t.Helper()
	ns := testNetns(t, "tap0")
	dir := t.TempDir()
	t.Cleanup(func() { d.Delete(context.Background(), id, true) })
	return cruntime.Spec{
		ID: id, Dir: dir, NetNS: "/run/netns/" + ns, Log: filepath.Join(dir, "log"),
		Args: []string{"/probe"}, Env: env,
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 128 << 20, Pids: 64},
	}
}

func cgroupGone(t *testing.T, id string) {
	t.Helper()
	for _, c := range []string{"memory", "cpu", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cairn", id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s/cairn/%s left behind: %v", c, id, err)
		}
	}
}

// TestDriverStartFailsWithFake: a guest the VMM refuses (no kernel file)
// fails Start with Firecracker's fault_message and leaves nothing.
func TestDriverStartFailsWithFake(t *testing.T) {
	t.Log("firecracker-with-fake (QEMU TCG guest): driver start refused before any guest runs")
	ctx := context.Background()
	d := newFakeDriver(t, t.TempDir(), func(ctx context.Context, s cruntime.Spec) (fc.Guest, error) {
		return fc.Guest{Kernel: filepath.Join(s.Dir, "no-kernel"), RootDrive: "/etc/hostname", Tap: "tap0", Cmdline: "console=ttyS0"}, nil
	})
	if d.Name() != "firecracker" || d.Isolation() != hostapi.IsolationMicroVM {
		t.Fatalf("Name %q, Isolation %q", d.Name(), d.Isolation())
	}
	s := instance(t, d, "fc-fail")
	err := d.Start(ctx, s)
	var f *fc.Fault
	if !errors.As(err, &f) || !strings.Contains(f.Message, "kernel") || f.Path != "/boot-source" {
		t.Fatalf("Start: %v, want the boot-source fault", err)
	}
	if _, err := d.Status(ctx, s.ID); !errors.Is(err, cruntime.ErrNotFound) {
		t.Fatalf("Status after a failed Start: %v, want ErrNotFound", err)
	}
	cgroupGone(t, s.ID)
	if _, err := os.Stat(d.Sock(s.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket left behind: %v", err)
	}
	if _, err := d.Status(ctx, "fc-none"); !errors.Is(err, cruntime.ErrNotFound) {
		t.Fatalf("Status of an unknown id: %v", err)
	}
	if err := d.Signal(ctx, "fc-none", syscall.SIGTERM); !errors.Is(err, cruntime.ErrNotFound) {
		t.Fatalf("Signal of an unknown id: %v", err)
	}
	if err := d.Delete(ctx, "fc-none", false); err != nil {
		t.Fatalf("Delete of an unknown id: %v", err)
	}
}

// TestDriverLifecycleWithFake runs the driver's life cycle with the test
// guest (not cairn's guest init): start,
// status, a second start refused, SIGTERM as Ctrl+Alt+Del, the guest's
// exit code, SIGKILL (137), a restart in place, adoption by a new Driver,
// delete.
func TestDriverLifecycleWithFake(t *testing.T) {
	t.Log("firecracker-with-fake (QEMU TCG guest): driver life cycle with a test guest init under QEMU TCG")
	kern := kernel(t)
	need(t)
	initrd := testInitrd(t)
	ctx := context.Background()
	state := t.TempDir()
	guest := func(ctx context.Context, s cruntime.Spec) (fc.Guest, error) {
		root := filepath.Join(s.Dir, "root.img")
		if err := os.WriteFile(root, make([]byte, 1<<20), 0o600); err != nil {
			return fc.Guest{}, err
		}
		cmdline := testCmdline
		for _, e := range s.Env {
			if v, ok := strings.CutPrefix(e, "TESTGUEST_EXIT="); ok {
				cmdline += " testguest.exit=" + v
			}
		}
		return fc.Guest{Kernel: kern, Initrd: initrd, RootDrive: root, Tap: "tap0", MAC: "06:00:0a:59:00:02", Cmdline: cmdline}, nil
	}
	d := newFakeDriver(t, state, guest)
	waitLog := func(s cruntime.Spec, want string) {
		t.Helper()
		for deadline := time.Now().Add(bootTimeout); ; time.Sleep(50 * time.Millisecond) {
			b, _ := os.ReadFile(s.Log)
			if strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the instance log after %v:\n%s", want, bootTimeout, b)
			}
		}
	}
	waitStopped := func(id string) cruntime.Status {
		t.Helper()
		for deadline := time.Now().Add(bootTimeout); ; time.Sleep(20 * time.Millisecond) {
			st, err := d.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Running {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still runs", id)
			}
		}
	}

	s := instance(t, d, "fc-a")
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status(ctx, s.ID)
	if err != nil || !st.Running || st.Pid == 0 {
		t.Fatalf("Status = %+v, %v; want running", st, err)
	}
	procs, _ := os.ReadFile("/sys/fs/cgroup/memory/cairn/fc-a/cgroup.procs")
	if !strings.Contains("\n"+string(procs), "\n"+itoa(st.Pid)+"\n") {
		t.Errorf("the VMM (pid %d) is not in its memory cgroup: %q", st.Pid, procs)
	}
	if lim, _ := os.ReadFile("/sys/fs/cgroup/memory/cairn/fc-a/memory.limit_in_bytes"); strings.TrimSpace(string(lim)) != itoa(128<<20+256<<20) {
		t.Errorf("memory limit %q", lim)
	}
	if err := d.Start(ctx, s); err == nil {
		t.Fatal("Start of a running id succeeded")
	}
	waitLog(s, "testguest: up")
	if err := d.Signal(ctx, s.ID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitStopped(s.ID); st.ExitCode == nil || *st.ExitCode != 0 {
		t.Fatalf("after SendCtrlAltDel: exit code %v, want 0", st.ExitCode)
	}
	waitLog(s, "testguest: got interrupt")

	// Started again in place; the guest exits 3 on its own.
	s.Env = []string{"TESTGUEST_EXIT=3"}
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st := waitStopped(s.ID); st.ExitCode == nil || *st.ExitCode != 3 {
		t.Fatalf("guest exit: exit code %v, want 3", st.ExitCode)
	}

	// Killed, then adopted: a new Driver over the same state finds a
	// running VM and stops it.
	s.Env = nil
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	d2 := newFakeDriver(t, state, guest)
	if st, err := d2.Status(ctx, s.ID); err != nil || !st.Running {
		t.Fatalf("new driver: Status = %+v, %v", st, err)
	}
	if err := d2.Signal(ctx, s.ID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitStopped(s.ID); st.ExitCode == nil || *st.ExitCode != 137 {
		t.Fatalf("after SIGKILL: exit code %v, want 137", st.ExitCode)
	}
	if err := d2.Delete(ctx, s.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Status(ctx, s.ID); !errors.Is(err, cruntime.ErrNotFound) {
		t.Fatalf("Status after Delete: %v", err)
	}
	cgroupGone(t, s.ID)
}

func itoa(n int) string { return strconv.Itoa(n) }
