package overlay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteFilesThroughHostLinks: an upper directory whose etc or
// etc/hosts is a symlink to a host path makes writeFiles fail with an
// escape error and leaves the host's files as they were. It needs no
// root: the links point at a host root and at files of the test.
func TestWriteFilesThroughHostLinks(t *testing.T) {
	hostDir := t.TempDir()
	sentinel := filepath.Join(hostDir, "hosts")
	want := []byte("127.0.0.1 host-sentinel\n")
	if err := os.WriteFile(sentinel, want, 0o644); err != nil {
		t.Fatal(err)
	}
	hostHosts, hostHostsErr := os.ReadFile("/etc/hosts")

	for _, c := range []struct {
		name  string
		setup func(t *testing.T, upper string)
	}{
		{"etc to host root", func(t *testing.T, upper string) {
			symlink(t, "/", filepath.Join(upper, "etc"))
		}},
		{"etc to host dir", func(t *testing.T, upper string) {
			symlink(t, hostDir, filepath.Join(upper, "etc"))
		}},
		{"etc/hosts to host file", func(t *testing.T, upper string) {
			if err := os.Mkdir(filepath.Join(upper, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, sentinel, filepath.Join(upper, "etc", "hosts"))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			upper := t.TempDir()
			c.setup(t, upper)
			err := writeFiles(upper, map[string][]byte{
				"etc/hosts":       []byte("10.0.0.1 evil\n"),
				"etc/resolv.conf": []byte("nameserver 10.0.0.1\n"),
			})
			if err == nil {
				t.Fatal("writeFiles through a host link succeeded")
			}
			if !strings.Contains(err.Error(), "path escapes from parent") {
				t.Fatalf("writeFiles: %v, want a path escapes error", err)
			}
			if got, err := os.ReadFile(sentinel); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("host sentinel: %q, %v; want %q", got, err, want)
			}
			if _, err := os.Lstat(filepath.Join(hostDir, "resolv.conf")); !os.IsNotExist(err) {
				t.Fatalf("host dir got resolv.conf: %v", err)
			}
			if hostHostsErr == nil {
				if got, err := os.ReadFile("/etc/hosts"); err != nil || !bytes.Equal(got, hostHosts) {
					t.Fatalf("host /etc/hosts changed: %q, %v", got, err)
				}
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
