package runtime_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/runtime/runc"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// cpuStat reads the CPU time (ns) and the throttled periods of instance
// id's cgroup, on cgroup v2 (cpu.stat's usage_usec) or v1 (cpuacct.usage
// and the cpu controller's cpu.stat): these hosts are cgroup-v1 hybrid.
func cpuStat(t *testing.T, id string) (usage time.Duration, throttled int64) {
	t.Helper()
	field := func(path, key string) int64 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok && k == key {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatalf("%s has no %s", path, key)
		return 0
	}
	rel := filepath.Join(runc.CgroupParent, id)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil { // v2
		st := filepath.Join("/sys/fs/cgroup", rel, "cpu.stat")
		return time.Duration(field(st, "usage_usec")) * time.Microsecond, field(st, "nr_throttled")
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", rel, "cpuacct.usage"))
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns), field(filepath.Join("/sys/fs/cgroup/cpu", rel, "cpu.stat"), "nr_throttled")
}

// TestCPUThrottled: an instance limited to 0.2 of a core that spins on
// every CPU is throttled (nr_throttled grows in its cgroup's cpu.stat)
// and uses at most about 0.3 of a core over a measured window.
func TestCPUThrottled(t *testing.T) {
	h := newHost(t)
	res := h.publish(runtimetest.ProbeRoot(t))
	d := probeDesired("cpu-1", res)
	d.Limits.CPU = 0.2
	// Twelve Go processes and their threads: room under the pids limit,
	// which a busy host's extra runtime threads exceeded at 32.
	d.Limits.Pids = 512
	o := h.start(d)
	_, th0 := cpuStat(t, "cpu-1")
	if got := get(t, o, "/burn?procs=12"); got != "burning" {
		t.Fatalf("burn: %q", got)
	}
	time.Sleep(300 * time.Millisecond) // the burners run
	u0, _ := cpuStat(t, "cpu-1")
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	u1, th1 := cpuStat(t, "cpu-1")
	wall := time.Since(t0)
	cores := float64(u1-u0) / float64(wall)
	t.Logf("cpu=0.2: %.3f cores over %s, %d periods throttled", cores, wall.Round(time.Millisecond), th1-th0)
	if cores > 0.3 {
		t.Errorf("%.3f cores used with a 0.2 limit", cores)
	}
	if cores <= 0 {
		t.Errorf("no CPU time in the window (%s → %s): the burners do not run", u0, u1)
	}
	// Throttled: on a busy host the burners may get less than their
	// quota in some periods; within 10 s some period is cut short.
	for deadline := time.Now().Add(10 * time.Second); th1 <= th0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, th1 = cpuStat(t, "cpu-1")
	}
	if th1 <= th0 {
		t.Errorf("nr_throttled %d → %d: not throttled", th0, th1)
	}
}
