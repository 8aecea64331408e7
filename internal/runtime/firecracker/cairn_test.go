package firecracker_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestCairnGuestCtrlAltDelWithFake: one boot of cairn's guest through the
// firecracker driver against a fake Firecracker booting under QEMU TCG.
// SIGTERM is SendCtrlAltDel: the guest init (Ctrl+Alt+Del turned into
// SIGINT) stops the app, writes its code to the status drive and reboots,
// which ends the VMM; the code is the app's (143: the probe dies of
// SIGTERM), not 137 (killed).
func TestCairnGuestCtrlAltDelWithFake(t *testing.T) {
	bin := fake(t)
	p, err := fcspec.Find()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fcspec.EnvSpec, p)
	t.Log("covers: the firecracker driver against a fake Firecracker booting under QEMU TCG (cairn's guest)")
	ctx := context.Background()
	dir := t.TempDir()
	d, err := fc.NewCairn(bin, filepath.Join(dir, "fc"), cairnGuest(t, dir, true))
	if err != nil {
		t.Fatal(err)
	}
	nets := runtimetest.Net(t, t.TempDir())
	const id = "cad-a"
	ip, err := nets.Add(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Delete(ctx, id, true)
		nets.Del(ctx, id, false)
	})
	inst := t.TempDir()
	spec := cruntime.Spec{ID: id, Dir: inst, Root: runtimetest.ProbeRoot(t), NetNS: nets.Path(id),
		Log: filepath.Join(inst, "log"), Args: []string{"/probe"}, Env: []string{"PORT=8080", "GREETING=cad"},
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 192 << 20}}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(spec.Log)
			t.Logf("console:\n%s", b)
		}
	})
	if err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if body := runtimetest.WaitHTTP(t, "http://"+net.JoinHostPort(ip.String(), "8080")+"/", tcgBoot); body != "ok cad\n" {
		t.Fatalf("body %q", body)
	}
	if err := d.Signal(ctx, id, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var st cruntime.Status
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err = d.Status(ctx, id); err != nil || !st.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still runs 60 s after Ctrl+Alt+Del")
		}
	}
	log, _ := os.ReadFile(spec.Log)
	if err != nil || st.ExitCode == nil || *st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("Status %+v, %v; want exit code 143 (the app's)", st, err)
	}
	for _, want := range []string{"cairn-guest: ctrl-alt-del: stopping the app", "cairn-guest: exit 143"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("console lacks %q:\n%s", want, log)
		}
	}
}
