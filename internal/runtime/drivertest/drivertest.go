// Package drivertest is the one conformance suite every runtime.Driver
// runs (runc now, microVM drivers later): start, status, exit codes,
// signals, delete, restart in place and a new Driver over the same state
// finding running instances.
package drivertest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// Options of a run of the suite.
type Options struct {
	// Boot bounds the time from Start to the first HTTP answer, and from
	// a signal to the instance's end; default 10s. MicroVMs under TCG
	// need far more.
	Boot time.Duration
}

// Run runs the suite with the default Options. newDriver returns a
// Driver keeping its state in dir; called twice with one dir, the second
// must find what the first started.
func Run(t *testing.T, newDriver func(t *testing.T, dir string) cruntime.Driver) {
	RunWith(t, Options{}, newDriver)
}

// RunWith runs the suite with o.
func RunWith(t *testing.T, o Options, newDriver func(t *testing.T, dir string) cruntime.Driver) {
	runtimetest.Need(t)
	if o.Boot <= 0 {
		o.Boot = 10 * time.Second
	}
	ctx := context.Background()
	state := t.TempDir()
	d := newDriver(t, state)
	if d.Name() == "" || (d.Isolation() != hostapi.IsolationContainer && d.Isolation() != hostapi.IsolationMicroVM) {
		t.Fatalf("Name %q, Isolation %q", d.Name(), d.Isolation())
	}
	nets := runtimetest.Net(t, t.TempDir())
	spec := func(t *testing.T, id string, args ...string) cruntime.Spec {
		dir := t.TempDir()
		ip, err := nets.Add(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			d.Delete(ctx, id, true)
			if err := nets.Del(ctx, id, false); err != nil {
				t.Error(err)
			}
		})
		if len(args) == 0 {
			args = []string{"/probe"}
		}
		os.WriteFile(filepath.Join(dir, "ip"), []byte(ip.String()), 0o600)
		return cruntime.Spec{
			ID: id, Dir: dir, Root: runtimetest.ProbeRoot(t), NetNS: nets.Path(id),
			Log: filepath.Join(dir, "log"), Args: args, Env: []string{"PORT=8080", "GREETING=hi"},
			Limits: hostapi.Limits{CPU: 0.5, MemoryBytes: 128 << 20, Pids: 64},
		}
	}
	url := func(s cruntime.Spec) string {
		ip, _ := os.ReadFile(filepath.Join(s.Dir, "ip"))
		return "http://" + net.JoinHostPort(string(ip), "8080") + "/"
	}
	waitStopped := func(t *testing.T, id string) cruntime.Status {
		t.Helper()
		deadline := time.Now().Add(o.Boot)
		for {
			s, err := d.Status(ctx, id)
			if err != nil {
				t.Fatalf("Status(%s): %v", id, err)
			}
			if !s.Running {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still runs", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("StartServeKill", func(t *testing.T) {
		s := spec(t, "conf-a")
		if err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		if st, err := d.Status(ctx, s.ID); err != nil || !st.Running || st.Pid == 0 {
			t.Fatalf("Status = %+v, %v; want running", st, err)
		}
		if body := runtimetest.WaitHTTP(t, url(s), o.Boot); body != "ok hi\n" {
			t.Fatalf("body %q", body)
		}
		if err := d.Start(ctx, s); err == nil {
			t.Fatal("Start of a running id succeeded")
		}
		if err := d.Signal(ctx, s.ID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		st := waitStopped(t, s.ID)
		if st.ExitCode == nil || *st.ExitCode != 128+9 {
			t.Fatalf("exit code %v, want 137", st.ExitCode)
		}
		// Started again in place.
		if err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		runtimetest.WaitHTTP(t, url(s), o.Boot)
		if err := d.Delete(ctx, s.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Status(ctx, s.ID); !errors.Is(err, cruntime.ErrNotFound) {
			t.Fatalf("Status after Delete: %v, want ErrNotFound", err)
		}
		if err := d.Delete(ctx, s.ID, false); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
	})
	t.Run("ExitCode", func(t *testing.T) {
		s := spec(t, "conf-b", "/probe", "exit", "3")
		err := d.Start(ctx, s)
		if err != nil { // it may end before Start sees it run
			t.Logf("Start: %v", err)
		}
		st := waitStopped(t, s.ID)
		if st.ExitCode == nil || *st.ExitCode != 3 {
			t.Fatalf("exit code %v, want 3", st.ExitCode)
		}
	})
	t.Run("Adopt", func(t *testing.T) {
		s := spec(t, "conf-c")
		if err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		d2 := newDriver(t, state)
		st, err := d2.Status(ctx, s.ID)
		if err != nil || !st.Running {
			t.Fatalf("new driver: Status = %+v, %v", st, err)
		}
		runtimetest.WaitHTTP(t, url(s), o.Boot)
		if err := d2.Signal(ctx, s.ID, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitStopped(t, s.ID)
	})
	t.Run("UnknownID", func(t *testing.T) {
		if _, err := d.Status(ctx, "conf-none"); !errors.Is(err, cruntime.ErrNotFound) {
			t.Fatalf("Status: %v", err)
		}
		if err := d.Signal(ctx, "conf-none", syscall.SIGTERM); !errors.Is(err, cruntime.ErrNotFound) {
			t.Fatalf("Signal: %v", err)
		}
	})
}
