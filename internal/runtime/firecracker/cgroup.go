package firecracker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// cgroups returns the directories of the instance's cgroup: one per
// controller (memory, cpu, pids) on a cgroup v1 host, one on a unified
// (v2) host. The VMM process joins every one of them.
func cgroups(root, id string) []string {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return []string{filepath.Join(root, "cairn", id)}
	}
	var dirs []string
	for _, c := range []string{"memory", "cpu", "pids"} {
		if _, err := os.Stat(filepath.Join(root, c)); err == nil {
			dirs = append(dirs, filepath.Join(root, c, "cairn", id))
		}
	}
	return dirs
}

// vmmOverhead is the memory the VMM itself may use beyond the guest's.
const vmmOverhead = 256 << 20

// makeCgroups creates the cgroups of id with the limits of a VM whose
// guest has guestMem bytes: guest memory plus the VMM's overhead, the CPU
// quota and the pid count.
func makeCgroups(root, id string, l hostapi.Limits, guestMem int64) ([]string, error) {
	dirs := cgroups(root, id)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no cgroup controllers under %s", root)
	}
	period := 100000
	quota := int(l.CPU * float64(period))
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var files map[string]string
		switch filepath.Base(filepath.Dir(filepath.Dir(dir))) {
		case "memory":
			files = map[string]string{"memory.limit_in_bytes": strconv.FormatInt(guestMem+vmmOverhead, 10)}
		case "cpu":
			if quota > 0 {
				files = map[string]string{"cpu.cfs_period_us": strconv.Itoa(period), "cpu.cfs_quota_us": strconv.Itoa(quota)}
			}
		case "pids":
			if l.Pids > 0 {
				files = map[string]string{"pids.max": strconv.Itoa(int(l.Pids))}
			}
		default: // unified
			files = map[string]string{"memory.max": strconv.FormatInt(guestMem+vmmOverhead, 10)}
			if quota > 0 {
				files["cpu.max"] = fmt.Sprintf("%d %d", quota, period)
			}
			if l.Pids > 0 {
				files["pids.max"] = strconv.Itoa(int(l.Pids))
			}
		}
		for name, val := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(val), 0o644); err != nil {
				return nil, fmt.Errorf("cgroup %s: %w", filepath.Join(dir, name), err)
			}
		}
	}
	return dirs, nil
}

// removeCgroups removes id's cgroups once their processes are gone. A
// process that just exited may still hold one (EBUSY) until it is reaped,
// so it tries for up to a second.
func removeCgroups(root, id string) error {
	var errs []error
	for _, dir := range cgroups(root, id) {
		err := os.Remove(dir)
		for i := 0; i < 100 && errors.Is(err, syscall.EBUSY); i++ {
			time.Sleep(10 * time.Millisecond)
			err = os.Remove(dir)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
