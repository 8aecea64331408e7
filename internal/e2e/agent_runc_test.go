package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
	"github.com/cairnhq/cairn/internal/server"
)

// runcAgent is a real `cairn agent --driver runc` process over a data dir
// and a host bridge of its own; everything it leaves is removed when the
// test ends.
type runcAgent struct {
	t              *testing.T
	e              *env
	tok            string
	data           string
	bridge, subnet string
	cmd            *exec.Cmd
	log            *lockedBuffer
	driver         []string // --driver and its flags; none is --driver runc
	capacity       string   // --capacity; "" is cpu=8,memory=8GiB,instances=10
	killed         bool     // killed with SIGKILL and not started again: its spare namespaces stay mounted
}

// runcEnv starts a server and a runc agent on bridge and subnet, and
// waits until the host is ready. It skips (fails under CI=true) without
// root, runc or the CNI plugins.
func runcEnv(t *testing.T, bridge, subnet string) (*env, *runcAgent) {
	t.Helper()
	return agentEnv(t, bridge, subnet, "runc")
}

// agentEnv is runcEnv with the agent's --driver name and its flags.
func agentEnv(t *testing.T, bridge, subnet, driver string, flags ...string) (*env, *runcAgent) {
	t.Helper()
	return agentEnvWith(t, nil, bridge, subnet, driver, flags...)
}

// agentEnvWith is agentEnv with mod changing the server's config too.
func agentEnvWith(t *testing.T, mod func(*server.Config), bridge, subnet, driver string, flags ...string) (*env, *runcAgent) {
	t.Helper()
	runtimetest.Need(t)
	e := start(t, func(c *server.Config) {
		c.HostTimeout = 5 * time.Second
		if mod != nil {
			mod(c)
		}
	})
	var tok struct{ Secret string }
	if code, _ := e.do("POST", "/v1/tokens", e.jsonBody(map[string]any{"name": "agent", "scopes": []string{"agent"}}), &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	a := &runcAgent{t: t, e: e, tok: tok.Secret, data: t.TempDir(), bridge: bridge, subnet: subnet,
		driver: append([]string{"--driver", driver}, flags...)}
	t.Cleanup(a.cleanup)
	a.start()
	waitUntil(t, "host registered", 15*time.Second, func() bool {
		var hs struct{ Hosts []map[string]any }
		e.do("GET", "/v1/hosts", nil, &hs)
		return len(hs.Hosts) == 1 && hs.Hosts[0]["state"] == "ready" && hs.Hosts[0]["driver"] == driver
	})
	return e, a
}

func (a *runcAgent) start() {
	a.t.Helper()
	a.log = &lockedBuffer{}
	capacity := a.capacity
	if capacity == "" {
		capacity = "cpu=8,memory=8GiB,instances=10"
	}
	driver := a.driver
	if len(driver) == 0 {
		driver = []string{"--driver", "runc"}
	}
	args := append([]string{"--api", a.e.api, "--token", a.tok, "--data", a.data, "agent"}, driver...)
	c := exec.Command(cairnBinary(a.t), append(args, "--bridge", a.bridge, "--subnet", a.subnet,
		"--capacity", capacity, "--max-crashes", "3", "--backoff", "500ms")...)
	c.Stdout, c.Stderr = a.log, a.log
	if err := c.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.cmd = c
	a.killed = false
}

// kill9 kills the agent process with SIGKILL (its instances live on).
func (a *runcAgent) kill9() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	a.cmd = nil
	a.killed = true
}

// runc runs the runc binary over the agent's runc state.
func (a *runcAgent) runc(args ...string) ([]byte, error) {
	return exec.Command("runc", append([]string{"--root", filepath.Join(a.data, "runc")}, args...)...).Output()
}

// pid is the host pid of instance id's app process, from runc.
func (a *runcAgent) pid(id string) int {
	a.t.Helper()
	out, err := a.runc("state", id)
	if err != nil {
		a.t.Fatalf("runc state %s: %v", id, err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		a.t.Fatalf("runc state %s: %s %v", id, out, err)
	}
	return st.Pid
}

// leftovers lists what the agent's instances hold on the host: mounts
// below its data dir, network namespaces, veths on its bridge, addresses
// leased from its subnet, runc containers and instance directories. The
// agent's spare namespaces (the pool, docs/design.md "Networking") are
// not an instance's: a spare's namespace, address and veth are left out.
func (a *runcAgent) leftovers() []string {
	var left []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], a.data) &&
			!strings.HasPrefix(f[4], filepath.Join(a.data, "net", "ns", "pool_")) {
			left = append(left, "mount "+f[4])
		}
	}
	spares := 0
	ns, _ := os.ReadDir(filepath.Join(a.data, "net", "ns"))
	for _, n := range ns {
		if strings.HasPrefix(n.Name(), "pool_") {
			spares++
			continue
		}
		left = append(left, "netns "+n.Name())
	}
	out, _ := exec.Command("ip", "-o", "link", "show", "master", a.bridge).Output()
	var veths []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			veths = append(veths, "veth "+l)
		}
	}
	if len(veths) > spares {
		left = append(left, veths...)
	}
	ips, _ := filepath.Glob(filepath.Join(a.data, "net", "ipam", "*", "[0-9]*.[0-9]*.[0-9]*.[0-9]*"))
	for _, ip := range ips {
		if b, err := os.ReadFile(ip); err == nil && strings.HasPrefix(string(b), "pool_") {
			continue
		}
		left = append(left, "address "+filepath.Base(ip))
	}
	if out, err := a.runc("list", "-q"); err == nil {
		for _, id := range strings.Fields(string(out)) {
			left = append(left, "runc container "+id)
		}
	}
	is, _ := os.ReadDir(filepath.Join(a.data, "instances"))
	for _, i := range is {
		left = append(left, "instance dir "+i.Name())
	}
	return left
}

// cleanup stops the agent and removes whatever its instances left, then
// its bridge.
func (a *runcAgent) cleanup() {
	if a.cmd != nil {
		a.cmd.Process.Signal(os.Interrupt)
		a.cmd.Wait()
	}
	if a.t.Failed() {
		a.t.Logf("agent log:\n%s", a.log.String())
	}
	if out, err := a.runc("list", "-q"); err == nil {
		for _, id := range strings.Fields(string(out)) {
			a.runc("delete", "--force", id)
		}
	}
	// QEMU microVMs (qemu-microvm driver) left by a failed test.
	pids, _ := filepath.Glob(filepath.Join(a.data, "instances", "*", "vm", "pid"))
	for _, p := range pids {
		b, _ := os.ReadFile(p)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if pid > 1 && bytes.Contains(cmdline, []byte(filepath.Dir(p))) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		id := filepath.Base(filepath.Dir(filepath.Dir(p)))
		cgs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "cairn-vm", id))
		cgs = append(cgs, filepath.Join("/sys/fs/cgroup", "cairn-vm", id))
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			left := 0
			for _, cg := range cgs {
				if err := os.Remove(cg); err != nil && !os.IsNotExist(err) {
					left++
				}
			}
			if left == 0 || time.Now().After(deadline) {
				break
			}
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], a.data) &&
			(a.killed || !strings.HasPrefix(f[4], filepath.Join(a.data, "net", "ns", "pool_"))) {
			mounts = append(mounts, f[4])
		}
	}
	slices.Reverse(mounts)
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	exec.Command("ip", "link", "del", a.bridge).Run()
}

// runcInstance is an instance record as `cairn ps --json` prints it.
type runcInstance struct {
	ID, State, Addr, Host string
	Restarts              int
	TreeDigest            string    `json:"tree_digest"`
	StartedAt             time.Time `json:"started_at"`
	ExitCode              *int      `json:"exit_code"`
	LastLog               []string  `json:"last_log"`
}

func (e *env) ps(name string) []runcInstance {
	e.t.Helper()
	out, err := e.cli(e.token, "ps", name, "--json")
	if err != nil {
		e.t.Fatalf("ps: %s %v", out, err)
	}
	var is []runcInstance
	if err := json.Unmarshal([]byte(out), &is); err != nil {
		e.t.Fatalf("ps --json: %v\n%s", err, out)
	}
	return is
}

// waitHealthy waits until name has n instances, all healthy.
func (e *env) waitHealthy(name string, n int, within time.Duration) []runcInstance {
	e.t.Helper()
	var is []runcInstance
	waitUntil(e.t, name+" healthy", within, func() bool {
		is = e.ps(name)
		if len(is) != n {
			return false
		}
		for _, in := range is {
			if in.State != "healthy" {
				return false
			}
		}
		return true
	})
	return is
}

// publishRootfs publishes dir as a rootfs release of deployment name
// with `cairn publish` and returns the release's tree digest.
func (e *env) publishRootfs(name, dir string, runtime ...string) string {
	e.t.Helper()
	args := append([]string{"--json", "publish", dir, "--deployment", name, "--kind", "rootfs"}, runtime...)
	out, err := e.cli(e.token, args...)
	if err != nil {
		e.t.Fatalf("cairn publish %s: %v\n%s", dir, err, out)
	}
	var v struct {
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ArtifactSHA256 == "" {
		e.t.Fatalf("publish: %s %v", out, err)
	}
	var rel struct {
		TreeSHA256 string `json:"tree_sha256"`
	}
	e.do("GET", "/v1/releases/"+v.ArtifactSHA256, nil, &rel)
	if rel.TreeSHA256 == "" {
		e.t.Fatalf("release %s has no tree digest", v.ArtifactSHA256)
	}
	return rel.TreeSHA256
}

func (e *env) scale(name string, n string) {
	e.t.Helper()
	if out, err := e.cli(e.token, "scale", name, n); err != nil {
		e.t.Fatalf("cairn scale %s %s: %v\n%s", name, n, err, out)
	}
}

// inSubnet checks that addr (ip:port) is on subnet.
func inSubnet(t *testing.T, addr, subnet string) string {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	_, n, _ := net.ParseCIDR(subnet)
	if err != nil || !n.Contains(net.ParseIP(host)) {
		t.Fatalf("instance address %q is not on %s", addr, subnet)
	}
	return host
}

// scaleToZero scales name to 0 and waits until the agent left nothing
// behind.
func (a *runcAgent) scaleToZero(name string) {
	a.t.Helper()
	a.e.scale(name, "0")
	waitUntil(a.t, "no instances", 60*time.Second, func() bool { return len(a.e.ps(name)) == 0 })
	var left []string
	// A microVM powers down with a grace of its own; two under TCG on a
	// busy host take longer than a container's stop.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if left = a.leftovers(); len(left) == 0 {
			return
		}
	}
	a.t.Fatalf("after scale 0, left on the host:\n%s", strings.Join(left, "\n"))
}

// TestAgentRunc drives a real `cairn agent --driver runc` through the API:
// a static Go server in an otherwise empty root, published as a rootfs
// release, scaled to 2, answers HTTP from the host at its bridge address
// on a root whose tree digest is the TOC's; the agent killed with SIGKILL
// and started again adopts the same processes; an instance whose app is
// killed is restarted after its backoff (restarts=1, kept across the
// agent's restart); scale 0 leaves no mount, namespace, veth, address or
// runc container.
func TestAgentRunc(t *testing.T) {
	const bridge, subnet = "cairne2e0", "10.91.0.0/24"
	e, ag := runcEnv(t, bridge, subnet)
	tree := e.publishRootfs("app", runtimetest.ProbeRoot(t),
		"--cmd", "/probe", "--port", "8080", "--env", "GREETING=hello", "--health-path", "/")
	e.scale("app", "2")
	is := e.waitHealthy("app", 2, 30*time.Second)
	pids := map[string]int{}
	for _, in := range is {
		inSubnet(t, in.Addr, subnet)
		if in.TreeDigest != tree {
			t.Errorf("instance %s reports tree digest %s; the TOC says %s", in.ID, in.TreeDigest, tree)
		}
		if body := httpBody(t, "http://"+in.Addr+"/"); body != "ok hello" {
			t.Errorf("GET %s: %q", in.Addr, body)
		}
		if in.Restarts != 0 || in.StartedAt.IsZero() {
			t.Errorf("instance %+v", in)
		}
		pids[in.ID] = ag.pid(in.ID)
	}
	if is[0].Addr == is[1].Addr {
		t.Fatalf("two instances at one address %s", is[0].Addr)
	}

	// kill -9 of the app's process: restarted after the backoff (500 ms).
	victim := is[0].ID
	killed := time.Now()
	if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var back runcInstance
	waitUntil(t, "restarted healthy", 20*time.Second, func() bool {
		for _, in := range e.ps("app") {
			if in.ID == victim && in.State == "healthy" && in.Restarts == 1 {
				back = in
				return true
			}
		}
		return false
	})
	if back.StartedAt.Before(killed.Add(500 * time.Millisecond)) {
		t.Errorf("restarted at %s, %s after the kill: before the 500ms backoff", back.StartedAt, back.StartedAt.Sub(killed))
	}
	if p := ag.pid(victim); p == pids[victim] {
		t.Errorf("the killed instance runs as pid %d still", p)
	} else {
		pids[victim] = p
	}
	if back.Addr != is[0].Addr || len(back.LastLog) != 0 {
		t.Errorf("restarted instance %+v; want it at %s, without last lines", back, is[0].Addr)
	}
	if body := httpBody(t, "http://"+back.Addr+"/"); body != "ok hello" {
		t.Errorf("GET %s after the restart: %q", back.Addr, body)
	}

	// kill -9 of the agent, started again: the same processes, adopted;
	// the restart count is kept.
	ag.kill9()
	ag.start()
	time.Sleep(3 * time.Second) // an adoption and a few heartbeats
	is = e.waitHealthy("app", 2, 15*time.Second)
	for _, in := range is {
		want := 0
		if in.ID == victim {
			want = 1
		}
		if p := ag.pid(in.ID); p != pids[in.ID] || in.Restarts != want {
			t.Errorf("after the agent restart: %s pid %d restarts %d; want pid %d (adopted) and restarts %d",
				in.ID, p, in.Restarts, pids[in.ID], want)
		}
		if body := httpBody(t, "http://"+in.Addr+"/"); body != "ok hello" {
			t.Errorf("GET %s after the agent restart: %q", in.Addr, body)
		}
	}
	if strings.Contains(ag.log.String(), "instance exited") {
		t.Errorf("the new agent saw an instance exit:\n%s", ag.log.String())
	}

	ag.scaleToZero("app")
	for _, in := range is {
		if _, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", in.Addr); err == nil {
			t.Errorf("%s answers after scale 0", in.Addr)
		}
	}
}

// TestAgentRuncNginx: nginx from the Debian tree the rootfs tests build,
// published as it is (its /dev nodes included) and run by a real agent:
// the host leaves the device nodes out of its cached tree (its /dev is
// the driver's tmpfs), verifies the rest against the TOC and serves
// "Welcome to nginx" through the instance's namespace.
func TestAgentRuncNginx(t *testing.T) {
	const bridge, subnet = "cairne2e1", "10.91.1.0/24"
	runtimetest.Need(t)
	tree := runtimetest.DebianTree(t)
	e, ag := runcEnv(t, bridge, subnet)
	digest := e.publishRootfs("web", tree, "--cmd", `["/usr/sbin/nginx","-g","daemon off;"]`, "--port", "80", "--health-path", "/")
	e.scale("web", "1")
	is := e.waitHealthy("web", 1, 50*time.Second)
	inSubnet(t, is[0].Addr, subnet)
	if is[0].TreeDigest != digest {
		t.Errorf("tree digest %s, TOC %s", is[0].TreeDigest, digest)
	}
	if body := httpBody(t, "http://"+is[0].Addr+"/"); !strings.Contains(body, "Welcome to nginx") {
		t.Errorf("GET %s: %.200q", is[0].Addr, body)
	}
	ag.scaleToZero("web")
}

// probeImage is an OCI image of one layer holding the probe (a static Go
// server) at /probe, with the runtime in its config.
func probeImage(t *testing.T) v1.Image {
	t.Helper()
	bin, err := os.ReadFile(runtimetest.Probe(t))
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "probe", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Entrypoint = []string{"/probe"}
	cf.Config.Env = []string{"GREETING=from-oci"}
	cf.Config.ExposedPorts = map[string]struct{}{"9090/tcp": {}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestAgentRuncOCI: an OCI image pushed to the registry with
// go-containerregistry runs through its derived rootfs release: the
// placement derives it, the agent runs the image config's Entrypoint,
// Env and exposed port, and it answers HTTP through its namespace on a
// root whose tree digest is the derived release's.
func TestAgentRuncOCI(t *testing.T) {
	const bridge, subnet = "cairne2e2", "10.91.2.0/24"
	e, ag := runcEnv(t, bridge, subnet)
	ref, err := name.ParseReference(strings.TrimPrefix(e.api, "http://")+"/ociapp:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, probeImage(t), remote.WithAuth(&authn.Basic{Username: "ci", Password: e.token})); err != nil {
		t.Fatalf("push: %v", err)
	}
	if out, err := e.cli(e.token, "activate", "ociapp", "1"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	e.scale("ociapp", "1")
	is := e.waitHealthy("ociapp", 1, 30*time.Second)
	var rf struct {
		Release struct {
			SHA256     string `json:"sha256"`
			TreeSHA256 string `json:"tree_sha256"`
		}
	}
	if code, _ := e.do("GET", "/v1/deployments/ociapp/versions/1/rootfs", nil, &rf); code != 200 || rf.Release.TreeSHA256 == "" {
		t.Fatalf("rootfs of v1: %d %+v", code, rf)
	}
	if is[0].TreeDigest != rf.Release.TreeSHA256 {
		t.Errorf("tree digest %s, derived release's %s", is[0].TreeDigest, rf.Release.TreeSHA256)
	}
	if _, port, _ := net.SplitHostPort(is[0].Addr); port != "9090" {
		t.Errorf("address %s; want the image's exposed port 9090", is[0].Addr)
	}
	inSubnet(t, is[0].Addr, subnet)
	if body := httpBody(t, "http://"+is[0].Addr+"/"); body != "ok from-oci" {
		t.Errorf("GET %s: %q", is[0].Addr, body)
	}
	ag.scaleToZero("ociapp")
}
