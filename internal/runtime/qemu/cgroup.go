package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// cgroupRoot is where the QEMU processes' cgroups go, one per instance.
const cgroupRoot = "/sys/fs/cgroup"

// cgroups makes id's cgroups for its QEMU process and returns the
// directories to join (cgroup.procs): memory (the VM's memory plus
// QEMU's own) and cpu (whole cores for the vCPUs). Cgroup v1 (one
// hierarchy per controller, as on these hosts) and v2 are both handled.
func cgroups(id string, memBytes int64, vcpus int) ([]string, error) {
	quota := strconv.Itoa(vcpus * 100000)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil { // v2
		parent := filepath.Join(cgroupRoot, "cairn-vm")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
		os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644)
		os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644)
		dir := filepath.Join(parent, id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := writeAll(map[string]string{
			filepath.Join(dir, "memory.max"): strconv.FormatInt(memBytes, 10),
			filepath.Join(dir, "cpu.max"):    quota + " 100000",
		}); err != nil {
			return nil, err
		}
		return []string{dir}, nil
	}
	mem := filepath.Join(cgroupRoot, "memory", "cairn-vm", id)
	cpu := filepath.Join(cgroupRoot, "cpu", "cairn-vm", id)
	for _, d := range []string{mem, cpu} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeAll(map[string]string{
		filepath.Join(mem, "memory.limit_in_bytes"): strconv.FormatInt(memBytes, 10),
		filepath.Join(cpu, "cpu.cfs_period_us"):     "100000",
	}); err != nil {
		return nil, err
	}
	if err := writeAll(map[string]string{filepath.Join(cpu, "cpu.cfs_quota_us"): quota}); err != nil {
		return nil, err
	}
	return []string{mem, cpu}, nil
}

func writeAll(files map[string]string) error {
	for p, v := range files {
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
	}
	return nil
}

// removeCgroups removes id's cgroups (they must be empty: QEMU ended).
func removeCgroups(id string) error {
	var errs []error
	for _, d := range []string{
		filepath.Join(cgroupRoot, "cairn-vm", id),
		filepath.Join(cgroupRoot, "memory", "cairn-vm", id),
		filepath.Join(cgroupRoot, "cpu", "cairn-vm", id),
	} {
		// A QEMU or sh that has just ended may hold the cgroup for a moment
		// (until it is reaped): EBUSY, tried again for up to 2 s.
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}
