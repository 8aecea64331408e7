package guest

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cavaliergopher/cpio"
)

// Modules are the kernel modules the guest needs (the distribution's
// kernel has them as modules): the virtio-mmio transport, the block and
// net devices, erofs and overlay for the root, and the ACPI power button
// with evdev for a graceful shutdown. Their dependencies come with them.
var Modules = []string{"virtio_mmio", "virtio_blk", "virtio_net", "erofs", "overlay", "button", "evdev"}

// modName is a module's name as modinfo and modules.dep spell it.
func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
}

// ModuleOrder returns the .ko files (relative to the kernel's module
// tree dir, lib/modules/VERSION) that load names and everything they
// depend on, each after its dependencies, in a deterministic order. The
// dependencies are read from each module's .modinfo section (what depmod
// turns into modules.dep), so a tree without modules.dep serves.
func ModuleOrder(dir string, names []string) ([]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			index[modName(p)] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, soft bool, from []string) error
	visit = func(name string, soft bool, from []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("kernel module %s: dependency cycle through %s", name, strings.Join(from, " → "))
		case 2:
			return nil
		}
		rel, ok := index[name]
		if !ok && soft {
			if rel, ok = cryptoAlias(dir, name); !ok {
				return nil // modprobe, too, goes on without a soft dependency it cannot find
			}
			name = modName(rel)
			if state[name] != 0 {
				return nil
			}
		}
		if !ok {
			return fmt.Errorf("kernel module %s not in %s (built in? then leave it out)", name, dir)
		}
		state[name] = 1
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		deps, softs, err := ModuleDeps(b)
		if err != nil {
			return fmt.Errorf("kernel module %s: %w", rel, err)
		}
		for _, d := range deps {
			if err := visit(d, false, append(from, name)); err != nil {
				return err
			}
		}
		for _, d := range softs {
			if err := visit(d, true, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, n := range names {
		if err := visit(n, false, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ModuleDeps reads a kernel module's .modinfo section: the modules of
// its "depends=" entry and the "pre:" names of its "softdep=" entry (a
// module or an alias, such as libcrc32c's crc32c), each sorted.
func ModuleDeps(ko []byte) (deps, softPre []string, err error) {
	info, err := modinfo(ko)
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
		}
		if v, ok := bytes.CutPrefix(kv, []byte("softdep=")); ok {
			pre := false
			for _, f := range strings.Fields(string(v)) {
				switch f {
				case "pre:":
					pre = true
				case "post:":
					pre = false
				default:
					if pre {
						softPre = append(softPre, strings.ReplaceAll(f, "-", "_"))
					}
				}
			}
		}
	}
	sort.Strings(deps)
	sort.Strings(softPre)
	return deps, softPre, nil
}

func modinfo(ko []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	return sec.Data()
}

// cryptoAlias finds the module under kernel/crypto (the generic
// implementations) that has alias name; soft dependencies name crypto
// algorithms that way.
func cryptoAlias(dir, name string) (string, bool) {
	des, err := os.ReadDir(filepath.Join(dir, "kernel", "crypto"))
	if err != nil {
		return "", false
	}
	for _, de := range des { // sorted: the first match is stable
		if !strings.HasSuffix(de.Name(), ".ko") {
			continue
		}
		rel := filepath.Join("kernel", "crypto", de.Name())
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			continue
		}
		info, err := modinfo(b)
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(info, []byte{0}) {
			if a, ok := bytes.CutPrefix(kv, []byte("alias=")); ok && strings.ReplaceAll(string(a), "-", "_") == name {
				return rel, true
			}
		}
	}
	return "", false
}

// entry of an archive.
type entry struct {
	name string
	mode cpio.FileMode
	data []byte
}

// writeArchive writes entries as one newc cpio archive: fixed times,
// owners and inode numbers, so equal input gives equal bytes.
func writeArchive(w io.Writer, entries []entry) error {
	cw := cpio.NewWriter(w)
	for _, e := range entries {
		h := &cpio.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), ModTime: time.Unix(0, 0), Links: 1}
		if e.mode&cpio.TypeDir != 0 {
			h.Size, h.Links = 0, 2
		}
		if err := cw.WriteHeader(h); err != nil {
			return err
		}
		if len(e.data) > 0 {
			if _, err := cw.Write(e.data); err != nil {
				return err
			}
		}
	}
	return cw.Close()
}

// Initramfs writes the shared initramfs: the init (the static binary
// cmd/cairn-guest-init) as /init, the modules the guest needs from the
// kernel module tree modDir (lib/modules/VERSION) under lib/modules/,
// and their load order in ModulesPath. It holds nothing of an instance
// (AppendConfig adds that), and equal inputs give equal bytes.
func Initramfs(w io.Writer, initBin []byte, modDir string) error {
	order, err := ModuleOrder(modDir, Modules)
	if err != nil {
		return err
	}
	entries := []entry{{name: "cairn", mode: cpio.TypeDir | 0o755}}
	for _, d := range []string{"dev", "lib", "lib/modules", "mnt", "proc", "sys"} {
		entries = append(entries, entry{name: d, mode: cpio.TypeDir | 0o755})
	}
	var list strings.Builder
	for _, rel := range order {
		b, err := os.ReadFile(filepath.Join(modDir, rel))
		if err != nil {
			return err
		}
		name := filepath.Base(rel)
		entries = append(entries, entry{name: "lib/modules/" + name, mode: cpio.TypeReg | 0o644, data: b})
		list.WriteString(name + "\n")
	}
	entries = append(entries,
		entry{name: ModulesPath, mode: cpio.TypeReg | 0o644, data: []byte(list.String())},
		entry{name: "init", mode: cpio.TypeReg | 0o755, data: initBin})
	return writeArchive(w, entries)
}

// AppendConfig writes the cpio archive a driver appends to the shared
// initramfs for one instance: ConfigPath holding c. The kernel unpacks
// concatenated archives in order.
func AppendConfig(w io.Writer, c Config) error {
	if err := c.Check(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return writeArchive(w, []entry{{name: ConfigPath, mode: cpio.TypeReg | 0o600, data: b}})
}
