package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrivesByContent: without the serials, the root drive is the one
// with an erofs superblock and the status drive the one of StatusSize
// without it; other drives and names are left alone.
func TestDrivesByContent(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mkfs.erofs is not installed")
		}
		t.Skip("mkfs.erofs is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "probe"), []byte("x"), 0o755)
	if out, err := exec.Command(mkfs, filepath.Join(dir, "vdb"), src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	for name, size := range map[string]int64{"vda": StatusSize, "vdc": 2 * StatusSize, "sda": StatusSize} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Truncate(filepath.Join(dir, name), size)
	}
	found := map[string]string{"12345": filepath.Join(dir, "vdc")} // a serial we do not know
	byContent(dir, []string{"sda", "vda", "vdb", "vdc", "vdz"}, found)
	if found[RootSerial] != filepath.Join(dir, "vdb") || found[StatusSerial] != filepath.Join(dir, "vda") || len(found) != 3 {
		t.Fatalf("found %v; want root vdb, status vda", found)
	}
	// Serials found first are kept.
	found = map[string]string{RootSerial: "/dev/vdq"}
	byContent(dir, []string{"vda", "vdb"}, found)
	if found[RootSerial] != "/dev/vdq" || found[StatusSerial] != filepath.Join(dir, "vda") {
		t.Fatalf("found %v", found)
	}
}

func TestModuleParams(t *testing.T) {
	cmdline := "console=ttyS0 reboot=k virtio_mmio.device=4K@0xd0000000:5 virtio-mmio.device=4K@0xd0001000:6 virtio_blk.x virtio_mmio. erofs.y=1\n"
	for mod, want := range map[string]string{
		"virtio_mmio": "device=4K@0xd0000000:5 device=4K@0xd0001000:6",
		"virtio_blk":  "x",
		"erofs":       "y=1",
		"overlay":     "",
	} {
		if got := ModuleParams(cmdline, mod); got != want {
			t.Errorf("%s: %q, want %q", mod, got, want)
		}
	}
}

// FuzzModuleParams: every parameter given comes from one "mod.key[=v]"
// word of the command line, without the module's prefix.
func FuzzModuleParams(f *testing.F) {
	f.Add("console=ttyS0 virtio_mmio.device=4K@0xd0000000:5", "virtio_mmio")
	f.Add("a.b.c=d=e x-y.z", "x_y")
	f.Fuzz(func(t *testing.T, cmdline, mod string) {
		got := ModuleParams(cmdline, mod)
		if got == "" {
			return
		}
		words := strings.Fields(cmdline)
		for _, p := range strings.Split(got, " ") {
			ok := false
			for _, w := range words {
				if m, rest, found := strings.Cut(w, "."); found && rest == p && strings.ReplaceAll(m, "-", "_") == mod {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("param %q of %q is no %s.* word of %q", p, got, mod, cmdline)
			}
		}
	})
}
