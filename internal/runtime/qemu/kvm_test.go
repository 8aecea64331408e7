package qemu

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKVMUsable: KVM only with a device that opens and a hardware
// backend loaded; a kvm_pvm device alone (these machines) gives TCG.
func TestKVMUsable(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sys := func(mods ...string) string {
		s := t.TempDir()
		for _, m := range mods {
			os.Mkdir(filepath.Join(s, m), 0o755)
		}
		return s
	}
	for _, c := range []struct {
		name string
		dev  string
		sys  string
		want bool
	}{
		{"intel", dev, sys("kvm", "kvm_intel"), true},
		{"amd", dev, sys("kvm", "kvm_amd"), true},
		{"pvm only", dev, sys("kvm", "kvm_pvm"), false},
		{"no backend", dev, sys("kvm"), false},
		{"no device", filepath.Join(dir, "none"), sys("kvm", "kvm_intel"), false},
	} {
		if got := KVMUsable(c.dev, c.sys); got != c.want {
			t.Errorf("%s: KVMUsable = %v, want %v", c.name, got, c.want)
		}
	}
	t.Logf("this host: KVMUsable = %v", KVMUsable("/dev/kvm", "/sys/module"))
}
