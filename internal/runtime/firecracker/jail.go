package firecracker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// Jail runs the VMM under Firecracker's jailer, which New uses when a
// `jailer` binary sits on $PATH next to a `firecracker` one. The jailer
// joins the network namespace (--netns), makes the cgroups
// (--parent-cgroup cairn, so they are cairn/ID as without it), chroots into
// BASE/firecracker/ID/root, drops to UID:GID and execs Firecracker. The
// guest's files are hard-linked into the chroot, or bind-mounted when
// they sit on another filesystem.
type Jail struct {
	Binary   string // the jailer
	UID, GID int
	Base     string // --chroot-base-dir
}

// dir is the jail of id: BASE/<exec file name>/ID; its root is dir/root.
func (j *Jail) dir(execFile, id string) string {
	return filepath.Join(j.Base, filepath.Base(execFile), id)
}

// jailSock is the API socket inside the chroot.
const jailSock = "/run/firecracker.socket"

// args is the jailer's command line; Firecracker's own flags follow "--".
func (j *Jail) args(execFile, id, netns, cgroupRoot string, l hostapi.Limits, guestMem int64) []string {
	args := []string{j.Binary, "--id", id, "--exec-file", execFile,
		"--uid", strconv.Itoa(j.UID), "--gid", strconv.Itoa(j.GID),
		"--chroot-base-dir", j.Base, "--netns", netns, "--parent-cgroup", "cairn"}
	mem := strconv.FormatInt(guestMem+vmmOverhead, 10)
	period := 100000
	quota := int(l.CPU * float64(period))
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		args = append(args, "--cgroup-version", "2", "--cgroup", "memory.max="+mem)
		if quota > 0 {
			args = append(args, "--cgroup", fmt.Sprintf("cpu.max=%d %d", quota, period))
		}
	} else {
		args = append(args, "--cgroup-version", "1", "--cgroup", "memory.limit_in_bytes="+mem)
		if quota > 0 {
			args = append(args, "--cgroup", "cpu.cfs_period_us="+strconv.Itoa(period), "--cgroup", "cpu.cfs_quota_us="+strconv.Itoa(quota))
		}
	}
	if l.Pids > 0 {
		args = append(args, "--cgroup", "pids.max="+strconv.FormatInt(l.Pids, 10))
	}
	return append(args, "--", "--api-sock", jailSock, "--log-path", "/vmm.log")
}

// stage puts the guest's files into root (made here) and returns the guest
// with paths as the jailed VMM sees them.
func stage(root string, g Guest, uid, gid int) (Guest, error) {
	for _, d := range g.Drives {
		if !ValidID(d.ID) {
			return g, ErrBadID
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		return g, err
	}
	put := func(src, name string, ro bool) (string, error) {
		dst := filepath.Join(root, name)
		if err := os.Link(src, dst); err != nil {
			if !errors.Is(err, syscall.EXDEV) {
				return "", err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return "", err
			}
			f.Close()
			if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
				return "", fmt.Errorf("bind %s: %w", src, err)
			}
			if ro {
				if err := syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
					return "", fmt.Errorf("read-only bind %s: %w", src, err)
				}
			}
		}
		if !ro {
			if err := os.Chown(dst, uid, gid); err != nil {
				return "", err
			}
		}
		return "/" + name, nil
	}
	var err error
	out := g
	if out.Kernel, err = put(g.Kernel, "kernel", true); err != nil {
		return g, err
	}
	if g.Initrd != "" {
		if out.Initrd, err = put(g.Initrd, "initrd", true); err != nil {
			return g, err
		}
	}
	if out.RootDrive, err = put(g.RootDrive, "rootfs", true); err != nil {
		return g, err
	}
	out.Drives = nil
	for _, d := range g.Drives {
		p, err := put(d.Path, "drive_"+d.ID, d.ReadOnly)
		if err != nil {
			return g, err
		}
		out.Drives = append(out.Drives, GuestDrive{ID: d.ID, Path: p, ReadOnly: d.ReadOnly})
	}
	log, err := os.OpenFile(filepath.Join(root, "vmm.log"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return g, err
	}
	log.Close()
	return out, os.Chown(filepath.Join(root, "vmm.log"), uid, gid)
}

// unstage removes a jail: it unmounts what stage bound (a hard link needs
// nothing), then removes the directory. The sources are left untouched.
func unstage(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "root"))
	if errors.Is(err, os.ErrNotExist) {
		return os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, "root", e.Name())
		for syscall.Unmount(p, syscall.MNT_DETACH) == nil {
		}
	}
	return os.RemoveAll(dir)
}
