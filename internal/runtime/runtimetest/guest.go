package runtimetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// DefaultGuestKernel is where scripts/guest-kernel (and so .ci/run) puts
// the microVM guest kernel; $CAIRN_GUEST_KERNEL names another vmlinux.
const DefaultGuestKernel = "/var/cache/cairn/guest-kernel/vmlinux"

// NeedQEMU skips (or, under CI=true, fails) t unless Need holds and
// QEMU, mkfs.erofs and a guest kernel are there. It returns the kernel.
func NeedQEMU(t testing.TB) string {
	t.Helper()
	Need(t)
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		fail("QEMU is not installed (apt-get install qemu-system-x86; .ci/run does)")
	}
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		fail("mkfs.erofs is not installed (apt-get install erofs-utils; .ci/run does)")
	}
	k := os.Getenv("CAIRN_GUEST_KERNEL")
	if k == "" {
		k = DefaultGuestKernel
	}
	if _, err := os.Stat(k); err != nil {
		fail("no guest kernel at %s (scripts/guest-kernel fetches it; .ci/run does)", k)
	}
	return k
}

var (
	initOnce sync.Once
	initBin  string
	initErr  error
)

// GuestInit returns the path of cmd/cairn-guest-init, built static once.
func GuestInit(t testing.TB) string {
	t.Helper()
	initOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "..", "..", "..", "cmd", "cairn-guest-init")
		dir, err := os.MkdirTemp("", "cairn-guest-init-")
		if err != nil {
			initErr = err
			return
		}
		initBin = filepath.Join(dir, "cairn-guest-init")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			initErr = fmt.Errorf("build cairn-guest-init: %v\n%s", err, out)
		}
	})
	if initErr != nil {
		t.Fatal(initErr)
	}
	return initBin
}
