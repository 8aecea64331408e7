package firecracker_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

// The tests here run against the fake Firecracker ("firecracker-with-fake
// (QEMU TCG guest)"): package fakefc, built once.

var (
	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
	fakeDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{fakeDir, guestDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// need skips (under CI=true: fails) t unless it can run the fake: root
// (network namespaces, taps, cgroups) and the pinned spec.
func need(t testing.TB) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Getuid() != 0 {
		fail("firecracker-with-fake (QEMU TCG guest): needs root")
	}
	if _, err := fcspec.Find(); err != nil {
		fail("firecracker-with-fake (QEMU TCG guest): %v", err)
	}
}

// fake returns the path of the fake Firecracker binary.
func fake(t testing.TB) string {
	t.Helper()
	need(t)
	fakeOnce.Do(func() {
		fakeDir, fakeErr = os.MkdirTemp("", "cairn-fakefc-")
		if fakeErr != nil {
			return
		}
		fakeBin = filepath.Join(fakeDir, "fakefc") // not "firecracker": New would jail it where a jailer exists
		cmd := exec.Command("go", "build", "-o", fakeBin, "./fakefc")
		if out, err := cmd.CombinedOutput(); err != nil {
			fakeErr = fmt.Errorf("build fakefc: %v\n%s", err, out)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakeBin
}

var nsSeq atomic.Int32

// testNetns makes a network namespace of the test's own holding the tap
// devices named, and removes it when the test ends.
func testNetns(t testing.TB, taps ...string) string {
	t.Helper()
	name := fmt.Sprintf("fc-test-%d-%d", os.Getpid(), nsSeq.Add(1))
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for _, tap := range taps {
		ip(t, "-n", name, "tuntap", "add", "dev", tap, "mode", "tap")
	}
	return name
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// fakeProc is a running fake Firecracker.
type fakeProc struct {
	sock string
	out  *syncBuffer // its stdout and stderr: the guest's console
	done chan struct{}
	code int
}

// startFake runs the fake in netns ns with QEMU binary qemu and returns
// it; the process is killed when the test ends.
func startFake(t testing.TB, ns, qemu string) *fakeProc {
	t.Helper()
	bin := fake(t)
	sock := filepath.Join(t.TempDir(), "api.sock")
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "--api-sock", sock, "--id", "test_vm", "--qemu", qemu)
	p := &fakeProc{sock: sock, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("fake firecracker's output:\n%s", p.out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake's socket did not appear: %s", p.out.String())
		}
	}
}

// waitOutput waits until the fake's output holds s.
func (p *fakeProc) waitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(p.out.String(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the console after %v", s, timeout)
		}
	}
}

// waitExit waits for the fake to end and returns its status.
func (p *fakeProc) waitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("the fake still runs after %v", timeout)
		return -1
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
