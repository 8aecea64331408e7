package runc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	cruntime "github.com/cairnhq/cairn/internal/runtime"
)

// dockerCaps is the capability set Docker grants a container by default
// (moby's oci/caps.DefaultCapabilities), and no more.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// CgroupParent is the one parent every instance's cgroup is made under.
const CgroupParent = "/cairn"

// Config builds the runtime-spec config.json of spec: pid, mount, ipc,
// uts and network namespaces (network: spec.NetNS), a cgroup under
// CgroupParent with the memory, cpu and pids limits, Docker's default
// capabilities and seccomp profile, no_new_privileges, the masked and
// read-only /proc paths and mounts `runc spec` gives, and rlimits.
func Config(spec cruntime.Spec) (*specs.Spec, error) {
	uid, gid, err := parseUser(spec.User)
	if err != nil {
		return nil, err
	}
	caps := append([]string(nil), dockerCaps...)
	// Open files: 65536, or the host's own hard limit if it is lower (a
	// container cannot raise it).
	nofile := uint64(65536)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Max < nofile {
		nofile = rl.Max
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	s := &specs.Spec{
		Version: "1.0.2",
		Process: &specs.Process{
			User: specs.User{UID: uid, GID: gid},
			Args: spec.Args,
			Env:  spec.Env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: spec.Root},
		Hostname: spec.ID,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: CgroupParent + "/" + spec.ID,
			Resources:   resources(spec),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace, Path: spec.NetNS},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	sc, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp default profile: %w", err)
	}
	s.Linux.Seccomp = sc
	return s, nil
}

func resources(spec cruntime.Spec) *specs.LinuxResources {
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if l := spec.Limits.MemoryBytes; l > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &l}
	}
	if c := spec.Limits.CPU; c > 0 {
		period := uint64(100000)
		quota := int64(c * float64(period))
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if p := spec.Limits.Pids; p > 0 {
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	return r
}

// parseUser reads "uid[:gid]"; names are not resolved (a release's
// /etc/passwd is not read by following its paths).
func parseUser(u string) (uint32, uint32, error) {
	if u == "" {
		return 0, 0, nil
	}
	us, gs, hasG := strings.Cut(u, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: want uid[:gid]", u)
	}
	gid := uid
	if hasG {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("user %q: want uid[:gid]", u)
		}
	}
	return uint32(uid), uint32(gid), nil
}
