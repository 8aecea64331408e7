package guest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

// guestModules is the module tree of the guest kernel scripts/guest-kernel
// fetched; without it (outside CI) the tests that read real modules skip.
func guestModules(t *testing.T) string {
	t.Helper()
	k := os.Getenv("CAIRN_GUEST_KERNEL")
	if k == "" {
		k = "/var/cache/cairn/guest-kernel/vmlinux"
	}
	dir := filepath.Join(filepath.Dir(k), "modules")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no guest kernel modules at %s (scripts/guest-kernel)", dir)
		}
		t.Skipf("no guest kernel modules at %s (scripts/guest-kernel fetches them)", dir)
	}
	return dir
}

func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	r := cpio.NewReader(bytes.NewReader(b))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = data
	}
}

// TestInitramfs: equal inputs give equal bytes; every module the guest
// needs is there, after its dependencies (hard and soft).
func TestInitramfs(t *testing.T) {
	mods := guestModules(t)
	init := []byte("\x7fELF not really an init")
	var a, b bytes.Buffer
	if err := Initramfs(&a, init, mods); err != nil {
		t.Fatal(err)
	}
	if err := Initramfs(&b, init, mods); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds differ")
	}
	files := readArchive(t, a.Bytes())
	if !bytes.Equal(files["init"], init) {
		t.Fatal("init missing")
	}
	order := strings.Fields(string(files[ModulesPath]))
	for _, m := range order {
		if _, ok := files["lib/modules/"+m]; !ok {
			t.Errorf("%s listed but not packed", m)
		}
	}
	at := func(m string) int {
		i := slices.Index(order, m)
		if i < 0 {
			t.Fatalf("%s not in %v", m, order)
		}
		return i
	}
	for _, m := range []string{"virtio_mmio.ko", "virtio_blk.ko", "virtio_net.ko", "erofs.ko", "overlay.ko", "button.ko", "evdev.ko"} {
		at(m)
	}
	for _, p := range [][2]string{{"virtio.ko", "virtio_mmio.ko"}, {"virtio_ring.ko", "virtio_blk.ko"}, {"net_failover.ko", "virtio_net.ko"},
		{"crc32c_generic.ko", "libcrc32c.ko"}, {"libcrc32c.ko", "erofs.ko"}} {
		if at(p[0]) > at(p[1]) {
			t.Errorf("%s loads after %s: %v", p[0], p[1], order)
		}
	}
	var c bytes.Buffer
	cfg := Config{Hostname: "web-1", Args: []string{"/probe"}, Addr: "10.89.0.5/16", Gateway: "10.89.0.1"}
	if err := AppendConfig(&c, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig(readArchive(t, c.Bytes())[ConfigPath])
	if err != nil || got.Hostname != "web-1" || got.Gateway != "10.89.0.1" {
		t.Fatalf("config round trip: %+v, %v", got, err)
	}
	if err := AppendConfig(&c, Config{Hostname: "web-1"}); err == nil {
		t.Fatal("a config without a command was appended")
	}
}

func TestModuleOrderMissing(t *testing.T) {
	mods := guestModules(t)
	if _, err := ModuleOrder(mods, []string{"no_such_module"}); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Fatalf("err = %v", err)
	}
}
