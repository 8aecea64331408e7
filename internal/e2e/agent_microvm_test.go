package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestAgentMicroVM drives a real `cairn agent --driver qemu-microvm`
// process (TCG here, KVM where /dev/kvm exists) through the API and the
// CLI: the static Go server (the probe), published as a rootfs release of
// a deployment with `isolation: microvm`, runs as microVMs, scaled to 2,
// and answers through the router (the edge); scaled back to 1, a new
// version rolls out, and a rollback under 4 keep-alive connections
// through the edge fails no request; scale 0 leaves nothing on the host.
// Four TCG boots, two at a time at most.
func TestAgentMicroVM(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass only: TCG boots are slow, and the storage backends are not what it tests")
		return
	}
	const bridge, subnet = "cairne2e3", "10.91.3.0/24"
	kernel := runtimetest.NeedQEMU(t)
	e, ag := agentEnv(t, bridge, subnet, "qemu-microvm", "--kernel", kernel, "--guest-init", runtimetest.GuestInit(t))
	var hs struct{ Hosts []map[string]any }
	e.do("GET", "/v1/hosts", nil, &hs)
	if h := hs.Hosts[0]; h["isolation"] != "microvm" || (h["accel"] != "tcg" && h["accel"] != "kvm") || h["kernel_sha256"] == "" {
		t.Fatalf("host record %v: want isolation microvm, accel tcg or kvm, the kernel's sha256", h)
	}
	const boot = 150 * time.Second // two TCG boots at once on a busy two-core host
	publish := func(greeting string) {
		e.publishRootfs("vm", runtimetest.ProbeRoot(t), "--cmd", "/probe", "--port", "8080",
			"--env", "GREETING="+greeting, "--health-path", "/")
	}
	publish("v1")
	if out, err := e.cli(e.token, "deployment", "set", "vm", "--isolation", "microvm", "--memory", "192MiB"); err != nil {
		t.Fatalf("set isolation: %v\n%s", err, out)
	}
	e.scale("vm", "2")
	t0 := time.Now()
	is := e.waitHealthy("vm", 2, boot)
	t.Logf("2 microVMs healthy %v after the scale (accel %v)", time.Since(t0).Round(time.Millisecond), hs.Hosts[0]["accel"])
	edge := strings.TrimPrefix(e.edge, "http://")
	for _, in := range is {
		inSubnet(t, in.Addr, subnet)
		if body := httpBody(t, "http://"+in.Addr+"/"); body != "ok v1" {
			t.Errorf("GET %s: %q", in.Addr, body)
		}
	}
	waitUntil(t, "the edge serves v1", 10*time.Second, func() bool { return fetchHost(edge, "vm.localhost") == "ok v1\n" })

	// Back to one VM for the rest: each TCG boot costs a core for tens of
	// seconds on this host, and the rollout and the rollback boot one each.
	e.scale("vm", "1")
	e.waitHealthy("vm", 1, boot)

	// v2 rolls out (a dynamic deployment's activation is rolling).
	t0 = time.Now()
	publish("v2")
	waitUntil(t, "the edge serves v2", boot, func() bool { return fetchHost(edge, "vm.localhost") == "ok v2\n" })
	t.Logf("v2 served through the edge %v after its publish", time.Since(t0).Round(time.Millisecond))
	e.waitHealthy("vm", 1, boot)

	// A rollback to v1 under load: paced keep-alive GETs through the edge.
	load := startPacedLoad([]string{edge}, "vm.localhost", 4, 50*time.Millisecond, 30*time.Second) // a TCG guest answers slowly while others boot
	time.Sleep(time.Second)
	t0 = time.Now()
	if out, err := e.cli(e.token, "rollback", "vm"); err != nil {
		load.finish()
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	waitUntil(t, "the edge serves v1 again", boot, func() bool { return fetchHost(edge, "vm.localhost") == "ok v1\n" })
	t.Logf("v1 served through the edge %v after the rollback", time.Since(t0).Round(time.Millisecond))
	time.Sleep(time.Second)
	var ok int
	var failures []string
	for _, r := range load.finish() {
		if r.err == nil && r.code == 200 && (r.body == "ok v1\n" || r.body == "ok v2\n") {
			ok++
		} else {
			failures = append(failures, fmt.Sprintf("%d %.100q %v", r.code, r.body, r.err))
		}
	}
	t.Logf("%d requests through the edge during the rollback, %d failed", ok+len(failures), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d failed requests, e.g. %v", len(failures), failures[:min(5, len(failures))])
	}
	if ok < 50 {
		t.Errorf("only %d successful requests under load", ok)
	}
	e.waitHealthy("vm", 1, boot)
	ag.scaleToZero("vm")
}

// TestAgentMicroVMNginx: the Debian nginx tree (as TestAgentRuncNginx
// publishes it) runs as a qemu-microvm instance of an isolation: microvm
// deployment and answers "Welcome to nginx" through the edge. One boot.
func TestAgentMicroVMNginx(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass only: TCG boots are slow, and the storage backends are not what it tests")
		return
	}
	const bridge, subnet = "cairne2e4", "10.91.4.0/24"
	kernel := runtimetest.NeedQEMU(t)
	tree := runtimetest.DebianTree(t)
	e, ag := agentEnv(t, bridge, subnet, "qemu-microvm", "--kernel", kernel, "--guest-init", runtimetest.GuestInit(t))
	e.publishRootfs("web", tree, "--cmd", `["/usr/sbin/nginx","-g","daemon off;"]`, "--port", "80", "--health-path", "/")
	if out, err := e.cli(e.token, "deployment", "set", "web", "--isolation", "microvm"); err != nil {
		t.Fatalf("set isolation: %v\n%s", err, out)
	}
	e.scale("web", "1")
	t0 := time.Now()
	is := e.waitHealthy("web", 1, 150*time.Second)
	t.Logf("nginx microVM healthy %v after the scale", time.Since(t0).Round(time.Millisecond))
	inSubnet(t, is[0].Addr, subnet)
	edge := strings.TrimPrefix(e.edge, "http://")
	waitUntil(t, "the edge serves nginx", 10*time.Second, func() bool {
		return strings.Contains(fetchHost(edge, "web.localhost"), "Welcome to nginx")
	})
	ag.scaleToZero("web")
}

// TestAgentMicroVMHostLoss is the rest of issue 16's acceptance, on two
// hosts: two real `cairn agent --driver qemu-microvm` processes (TCG
// here). The probe, as an isolation: microvm deployment scaled to 2, gets
// a VM on each host. Under paced keep-alive load through the edge, a new
// version rolls out at 2 and is rolled back, and no request fails. Then
// one host is lost: its agent and every process of its VMs are killed
// with SIGKILL. The host turns lost, its VM is replaced on the other
// host, and requests fail only between the kill and the replacement.
// Up to seven TCG boots, two at a time at most.
func TestAgentMicroVMHostLoss(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass only: TCG boots are slow, and the storage backends are not what it tests")
		return
	}
	kernel := runtimetest.NeedQEMU(t)
	e, first := agentEnv(t, "cairne2e5", "10.91.5.0/24", "qemu-microvm", "--kernel", kernel, "--guest-init", runtimetest.GuestInit(t))
	second := &runcAgent{t: t, e: e, tok: first.tok, data: t.TempDir(), bridge: "cairne2e6", subnet: "10.91.6.0/24", driver: first.driver}
	t.Cleanup(second.cleanup)
	second.start()
	hostState := func() map[string]string {
		var hs struct{ Hosts []map[string]any }
		e.do("GET", "/v1/hosts", nil, &hs)
		m := map[string]string{}
		for _, h := range hs.Hosts {
			m[fmt.Sprint(h["id"])] = fmt.Sprint(h["state"])
		}
		return m
	}
	waitUntil(t, "2 hosts ready", 15*time.Second, func() bool {
		n := 0
		for _, s := range hostState() {
			if s == "ready" {
				n++
			}
		}
		return n == 2
	})
	agentOf := func(host string) *runcAgent {
		for _, a := range []*runcAgent{first, second} {
			if b, err := os.ReadFile(filepath.Join(a.data, "host-id")); err == nil && strings.TrimSpace(string(b)) == host {
				return a
			}
		}
		t.Fatalf("no agent for host %s", host)
		return nil
	}

	const boot = 150 * time.Second // two TCG boots at once on a busy two-core host
	publish := func(greeting string) {
		e.publishRootfs("vm", runtimetest.ProbeRoot(t), "--cmd", "/probe", "--port", "8080",
			"--env", "GREETING="+greeting, "--health-path", "/")
	}
	publish("v1")
	if out, err := e.cli(e.token, "deployment", "set", "vm", "--isolation", "microvm", "--memory", "192MiB"); err != nil {
		t.Fatalf("set isolation: %v\n%s", err, out)
	}
	e.scale("vm", "2")
	t0 := time.Now()
	is := e.accHealthy("vm", 2, 1, boot)
	t.Logf("2 microVMs healthy %v after the scale", time.Since(t0).Round(time.Millisecond))
	if got := perHost(is); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("vm placed %v per host; want a VM on each host", got)
	}
	edge := strings.TrimPrefix(e.edge, "http://")
	waitUntil(t, "the edge serves v1", 10*time.Second, func() bool { return fetchHost(edge, "vm.localhost") == "ok v1\n" })

	load := startPacedLoad([]string{edge}, "vm.localhost", 4, 50*time.Millisecond, 30*time.Second) // a TCG guest answers slowly while others boot
	loadStopped := false
	defer func() {
		if !loadStopped {
			load.finish()
		}
	}()
	time.Sleep(time.Second)

	// A rollout at 2, then a rollback at 2, under the load.
	t0 = time.Now()
	publish("v2")
	e.accHealthy("vm", 2, 2, 2*boot)
	waitUntil(t, "the edge serves v2", 10*time.Second, func() bool { return fetchHost(edge, "vm.localhost") == "ok v2\n" })
	t.Logf("v2 rolled out at 2 %v after its publish", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if out, err := e.cli(e.token, "rollback", "vm"); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	is = e.accHealthy("vm", 2, 1, 2*boot)
	waitUntil(t, "the edge serves v1 again", 10*time.Second, func() bool { return fetchHost(edge, "vm.localhost") == "ok v1\n" })
	t.Logf("v1 rolled back at 2 %v after the rollback", time.Since(t0).Round(time.Millisecond))

	// Host loss: the agent of the first instance's host, and every process
	// of its VMs (their shells and QEMU), get SIGKILL.
	victimHost := is[0].Host
	victim := agentOf(victimHost)
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmdline, []byte(victim.data)) {
			pids = append(pids, pid)
		}
	}
	killedAt := time.Now()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	victim.cmd.Wait()
	victim.cmd, victim.killed = nil, true
	waitUntil(t, "the host is lost", 30*time.Second, func() bool { return hostState()[victimHost] == "lost" })
	lost := time.Since(killedAt)
	waitUntil(t, "2 healthy VMs on the other host", boot, func() bool {
		n := 0
		for _, in := range e.accPS("vm") {
			if in.State == "healthy" && in.Host != victimHost && in.VersionNumber == 1 {
				n++
			}
		}
		return n == 2
	})
	replaced := time.Since(killedAt)
	t.Logf("host loss (%d processes killed): the host lost %v and its VM replaced %v after the kill",
		len(pids), lost.Round(time.Millisecond), replaced.Round(time.Millisecond))
	time.Sleep(time.Second)
	results := load.finish()
	loadStopped = true

	var ok, failed, failedAtLoss int
	var examples []string
	for _, r := range results {
		good := r.err == nil && r.code == 200 && (r.body == "ok v1\n" || r.body == "ok v2\n")
		switch {
		case good:
			ok++
		case r.end.After(killedAt) && r.start.Before(killedAt.Add(replaced)):
			failedAtLoss++
		default:
			failed++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%d %.80q %v", r.code, r.body, r.err))
			}
		}
	}
	t.Logf("%d requests through the edge: %d ok, %d failed outside the host loss, %d during it",
		len(results), ok, failed, failedAtLoss)
	if failed > 0 {
		t.Errorf("%d failed requests outside the host loss, e.g. %v", failed, examples)
	}
	if ok < 100 {
		t.Errorf("only %d successful requests under load", ok)
	}
	survivor := first
	if victim == first {
		survivor = second
	}
	survivor.scaleToZero("vm")
}
