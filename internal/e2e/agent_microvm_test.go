package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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

	// A rollback to v1 under load: keep-alive GETs through the edge.
	var (
		mu       sync.Mutex
		ok       int
		failures []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
			defer c.CloseIdleConnections()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", e.edge+"/", nil)
				req.Host = "vm.localhost"
				resp, err := c.Do(req)
				var fail string
				if err != nil {
					fail = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || (string(b) != "ok v1\n" && string(b) != "ok v2\n") {
						fail = fmt.Sprintf("%d %.100q", resp.StatusCode, b)
					}
				}
				mu.Lock()
				if fail != "" {
					failures = append(failures, fail)
				} else {
					ok++
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond) // a TCG guest answers slowly; flooding it starves the new VMs' boots
			}
		}()
	}
	time.Sleep(time.Second)
	t0 = time.Now()
	if out, err := e.cli(e.token, "rollback", "vm"); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	waitUntil(t, "the edge serves v1 again", boot, func() bool { return fetchHost(edge, "vm.localhost") == "ok v1\n" })
	t.Logf("v1 served through the edge %v after the rollback", time.Since(t0).Round(time.Millisecond))
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
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
