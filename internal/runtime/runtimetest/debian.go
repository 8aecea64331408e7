package runtimetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DebianCache holds a debootstrap tree between test runs (about 230 MB,
// 60 s to build the first time).
const DebianCache = "/var/cache/cairn-test/debootstrap-bookworm"

// DebianTree returns a Debian bookworm root filesystem with nginx-light,
// built with debootstrap the first time. Outside CI, without root or
// debootstrap, the test skips; in CI it fails, with the reason.
func DebianTree(t testing.TB) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Getuid() != 0 {
		fail("a root filesystem test needs root")
	}
	if _, err := os.Stat(filepath.Join(DebianCache, "usr/sbin/nginx")); err == nil {
		return DebianCache
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		fail("debootstrap is not installed (apt-get install debootstrap; .ci/run does)")
	}
	// A directory of its own: test binaries of several packages may build
	// the cache at once; the first rename wins, the others use it.
	if err := os.MkdirAll(filepath.Dir(DebianCache), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(DebianCache), filepath.Base(DebianCache)+".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include=nginx-light", "bookworm", tmp).CombinedOutput()
	if err != nil {
		fail("debootstrap bookworm failed (is the Debian mirror deb.debian.org reachable?): %v\n%s", err, LastBytes(out, 2000))
	}
	if err := os.Rename(tmp, DebianCache); err != nil {
		if _, serr := os.Stat(filepath.Join(DebianCache, "usr/sbin/nginx")); serr == nil {
			return DebianCache // another test binary built it meanwhile
		}
		t.Fatal(err)
	}
	return DebianCache
}

// LastBytes is the last n bytes of b.
func LastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
