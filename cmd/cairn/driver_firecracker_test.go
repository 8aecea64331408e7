package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentFirecrackerRefuses: `cairn agent --driver firecracker` without
// a Firecracker binary, or without /dev/kvm, exits 1 with one line that
// says which.
func TestAgentFirecrackerRefuses(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "firecracker")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := kvmDevice
	t.Cleanup(func() { kvmDevice = old })
	kvmDevice = filepath.Join(dir, "no-kvm") // as on a host without KVM, whatever this one has
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--firecracker", filepath.Join(dir, "missing")}, "cairn: --firecracker " + filepath.Join(dir, "missing") + ": not an executable file\n"},
		{[]string{"--firecracker", exe, "--jailer", filepath.Join(dir, "nojailer")}, "cairn: --jailer " + filepath.Join(dir, "nojailer") + ": not an executable file\n"},
		{[]string{"--firecracker", exe}, "cairn: firecracker driver: " + kvmDevice + ": no such file or directory (Firecracker needs KVM; --driver qemu-microvm runs without it)\n"},
	} {
		args := append([]string{"agent", "--driver", "firecracker", "--kernel", filepath.Join(dir, "vmlinux"),
			"--data", filepath.Join(dir, "data"), "--api", "http://127.0.0.1:1", "--token", "t"}, tc.args...)
		stdout, stderr, code := cli(t, nil, args...)
		if code == 0 || stderr != tc.want || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	// No binary on $PATH and none given.
	t.Setenv("PATH", dir+"/empty")
	_, stderr, code := cli(t, nil, "agent", "--driver", "firecracker", "--kernel", "k", "--data", filepath.Join(dir, "data"), "--api", "http://127.0.0.1:1", "--token", "t")
	if code == 0 || !strings.HasPrefix(stderr, "cairn: firecracker driver: no firecracker binary on $PATH") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("no binary: exit %d, stderr %q", code, stderr)
	}
}
