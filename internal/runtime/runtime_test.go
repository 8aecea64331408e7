package runtime_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/runc"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// host is one test host: a data directory, its cache, network and runc.
type host struct {
	t      *testing.T
	dir    string
	art    *runtimetest.Artifacts
	netCfg netns.Config
	nets   *netns.Manager // the current process's
	rt     *cruntime.Runtime
}

func newHost(t *testing.T) *host {
	runtimetest.Need(t)
	h := &host{t: t, dir: t.TempDir(), art: runtimetest.Serve(t)}
	// A pool of one spare namespace: the tests start instances both
	// from the pool and, when it is empty, without it.
	h.netCfg = runtimetest.NetConfig(t, filepath.Join(h.dir, "net"))
	h.netCfg.Pool = 1
	h.rt = h.open()
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := h.rt.List(ctx)
		for _, o := range list {
			h.rt.Stop(ctx, o.ID, 0)
		}
		h.rt.Close()
	})
	return h
}

// open makes a Runtime over the host's data directory, as a new agent
// process does.
func (h *host) open() *cruntime.Runtime {
	t := h.t
	nets, err := netns.New(h.netCfg)
	if err != nil {
		t.Fatal(err)
	}
	h.nets = nets
	c, err := cache.Open(filepath.Join(h.dir, "cache"), &cache.HTTP{Base: h.art.URL, Token: "test-token"}, cache.Options{Chunk: 1 << 20, Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := runc.New(filepath.Join(h.dir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := cruntime.New(context.Background(), cruntime.Config{Dir: h.dir, Cache: c, Net: nets, Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// publish serves dir as a release and returns it.
func (h *host) publish(dir string) *release.Result {
	res, b := runtimetest.Pack(h.t, dir)
	h.art.Add(res.SHA256, b)
	return res
}

func probeDesired(id string, res *release.Result) hostapi.Desired {
	return hostapi.Desired{
		ID: id, Release: res.SHA256, TreeDigest: res.TOC.TreeSHA256,
		Cmd: []string{"/probe"}, Env: map[string]string{"GREETING": "hello"}, Port: 8080,
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 64 << 20, Pids: 32},
	}
}

func (h *host) start(d hostapi.Desired) hostapi.Observed {
	h.t.Helper()
	o, err := h.rt.Start(context.Background(), d)
	if err != nil {
		h.t.Fatalf("Start %s: %v", d.ID, err)
	}
	if o.State != hostapi.StateStarting || o.Addr == "" {
		h.t.Fatalf("Start %s: %+v", d.ID, o)
	}
	runtimetest.WaitHTTP(h.t, "http://"+o.Addr+"/", 10*time.Second)
	return o
}

func get(t *testing.T, o hostapi.Observed, path string) string {
	t.Helper()
	body, err := runtimetest.Get("http://" + o.Addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return body
}

// TestProbeIsolated: a static Go server in an otherwise empty root answers
// HTTP through its namespace, on the root its release names, and from
// inside it sees none of the host.
func TestProbeIsolated(t *testing.T) {
	h := newHost(t)
	res := h.publish(runtimetest.ProbeRoot(t))
	o := h.start(probeDesired("probe-1", res))
	if o.TreeDigest != res.TOC.TreeSHA256 {
		t.Fatalf("tree digest %s, TOC %s", o.TreeDigest, res.TOC.TreeSHA256)
	}
	if body := get(t, o, "/"); body != "ok hello\n" {
		t.Fatalf("body %q", body)
	}
	ip, port, _ := net.SplitHostPort(o.Addr)

	t.Run("NotOnHostLoopback", func(t *testing.T) {
		if _, err := runtimetest.Get("http://127.0.0.1:" + port + "/"); err == nil {
			t.Fatal("the instance answers on the host's loopback")
		}
	})
	t.Run("HostProcesses", func(t *testing.T) {
		if n := get(t, o, "/pids"); n != "1" {
			t.Fatalf("the instance sees %s processes, want only itself", n)
		}
	})
	t.Run("HostLoopbackServices", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go http.Serve(ln, http.NotFoundHandler())
		_, hp, _ := net.SplitHostPort(ln.Addr().String())
		gw := net.ParseIP(ip).To4()
		gw[3] = 1
		for _, addr := range []string{ln.Addr().String(), net.JoinHostPort(gw.String(), hp)} {
			if got := get(t, o, "/dial?addr="+addr); got == "connected" {
				t.Errorf("the instance reached the host's loopback service at %s", addr)
			}
		}
	})
	t.Run("WriteOutsideRoot", func(t *testing.T) {
		sentinel := filepath.Join(t.TempDir(), "escape")
		for _, p := range []string{sentinel, "/../../.." + sentinel, "/proc/sysrq-trigger", "/sys/kernel/escape"} {
			get(t, o, "/write?path="+p)
		}
		if _, err := os.Stat(sentinel); err == nil {
			t.Fatal("the instance wrote a host file")
		}
		if _, err := os.Stat(filepath.Join(h.dir, "cache", "trees", res.SHA256, "tree", sentinel)); err == nil {
			t.Fatal("the instance wrote into the cache")
		}
	})
	t.Run("MemoryHogOOMKilled", func(t *testing.T) {
		if got := get(t, o, "/hog"); got != "signal: killed" {
			t.Fatalf("hog: %q, want signal: killed", got)
		}
		get(t, o, "/") // the server lives on
	})
	t.Run("ForkBombAtPidsLimit", func(t *testing.T) {
		got := get(t, o, "/forkbomb")
		var n int
		var rest string
		fmt.Sscanf(got, "%d %s", &n, &rest)
		if n >= 32 || !strings.Contains(got, "resource temporarily unavailable") {
			t.Fatalf("fork bomb: %q, want fewer than 32 and EAGAIN", got)
		}
		get(t, o, "/")
	})
	t.Run("EgressOff", func(t *testing.T) {
		if got := get(t, o, "/dial?addr=1.1.1.1:53"); !strings.Contains(got, "unreachable") {
			t.Fatalf("dial beyond the bridge without egress: %q", got)
		}
	})
}

// TestSharedLower: two instances of one release, started at once, fetch
// it once and share one lower layer; the writes of one are seen neither
// by the other nor in the cache.
func TestSharedLower(t *testing.T) {
	h := newHost(t)
	res := h.publish(runtimetest.ProbeRoot(t))
	var wg sync.WaitGroup
	obs := make([]hostapi.Observed, 2)
	for i := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := h.rt.Start(context.Background(), probeDesired(fmt.Sprintf("shared-%d", i), res))
			if err != nil {
				t.Error(err)
			}
			obs[i] = o
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	chunks := (res.Size + 1<<20 - 1) >> 20
	if got := h.art.Requests.Load(); got != 1+chunks {
		t.Fatalf("%d artifact requests for two starts, want one HEAD and %d ranges", got, chunks)
	}
	for _, o := range obs {
		runtimetest.WaitHTTP(t, "http://"+o.Addr+"/", 10*time.Second)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	lower := "lowerdir=" + filepath.Join(h.dir, "cache", "trees", res.SHA256, "tree")
	if n := strings.Count(string(mounts), lower+","); n != 2 {
		t.Fatalf("%d overlays on the lower %s, want 2", n, lower)
	}
	if got := get(t, obs[0], "/write?path=/mine"); got != "<nil>" {
		t.Fatalf("write in instance 0: %s", got)
	}
	if got := get(t, obs[0], "/read?path=/mine"); got != "from the instance\n" {
		t.Fatalf("read back in instance 0: %q", got)
	}
	if got := get(t, obs[1], "/read?path=/mine"); !strings.HasPrefix(got, "error") {
		t.Fatalf("instance 1 sees instance 0's write: %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "cache", "trees", res.SHA256, "tree", "mine")); err == nil {
		t.Fatal("the write is in the cache")
	}
}

// TestEtcSymlinkToHost: a release whose /etc is an absolute symlink to a
// host directory: cairn's /etc/hosts goes into the instance's upper
// layer, never onto the host.
func TestEtcSymlinkToHost(t *testing.T) {
	h := newHost(t)
	hostEtc := t.TempDir()
	sentinel := filepath.Join(hostEtc, "sentinel")
	os.WriteFile(sentinel, []byte("host\n"), 0o644)
	root := runtimetest.ProbeRoot(t)
	if err := os.Symlink(hostEtc, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	res := h.publish(root)
	o := h.start(probeDesired("etc-link", res))
	des, _ := os.ReadDir(hostEtc)
	if len(des) != 1 {
		t.Fatalf("the host directory the release's /etc names holds %d entries, want only the sentinel", len(des))
	}
	if got := get(t, o, "/read?path=/etc/hosts"); !strings.Contains(got, "etc-link") {
		t.Fatalf("/etc/hosts in the instance: %q", got)
	}
	if got := get(t, o, "/read?path=/etc/sentinel"); !strings.HasPrefix(got, "error") {
		t.Fatalf("the instance reads the host's directory: %q", got)
	}
	get(t, o, "/write?path=/etc/sentinel")
	if b, _ := os.ReadFile(sentinel); string(b) != "host\n" {
		t.Fatalf("the host's sentinel is now %q", b)
	}
}

// TestCrashAndAdopt: a killed instance shows as stopped with its exit
// code and starts again in place; a new Runtime over the same directory
// adopts the running instance, and Stop releases all it held.
func TestCrashAndAdopt(t *testing.T) {
	h := newHost(t)
	res := h.publish(runtimetest.ProbeRoot(t))
	o := h.start(probeDesired("crash-1", res))
	d, _ := runc.New(filepath.Join(h.dir, "runc"))
	if err := d.Signal(context.Background(), "crash-1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := h.rt.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].State == hostapi.StateStopped {
			if list[0].ExitCode == nil || *list[0].ExitCode != 137 {
				t.Fatalf("exit code %v, want 137", list[0].ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("List after kill: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o2 := h.start(probeDesired("crash-1", res))
	if o2.Restarts != 1 || o2.Addr != o.Addr {
		t.Fatalf("restart: %+v, was %+v", o2, o)
	}
	get(t, o2, "/write?path=/kept")

	// A new agent process: the instance keeps running and is found.
	h.rt.Close()
	h.rt = h.open()
	list, err := h.rt.List(context.Background())
	if err != nil || len(list) != 1 || list[0].State != hostapi.StateStarting || list[0].Addr != o.Addr || list[0].TreeDigest != res.TOC.TreeSHA256 {
		t.Fatalf("adopted: %+v, %v", list, err)
	}
	if got := get(t, o2, "/read?path=/kept"); got != "from the instance\n" {
		t.Fatalf("adopted instance lost its root: %q", got)
	}
	var logs strings.Builder
	if err := h.rt.Logs(context.Background(), "crash-1", false, &logs); err != nil || !strings.Contains(logs.String(), "probe listening on 8080") {
		t.Fatalf("logs: %q, %v", logs.String(), err)
	}
	if err := h.rt.Stop(context.Background(), "crash-1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.rt.Settle()
	if list, _ := h.rt.List(context.Background()); len(list) != 0 {
		t.Fatalf("after Stop: %+v", list)
	}
	if _, err := runtimetest.Get("http://" + o.Addr + "/"); err == nil {
		t.Fatal("stopped instance answers")
	}
	ip, _, _ := net.SplitHostPort(o.Addr)
	if ipam, _ := filepath.Glob(filepath.Join(h.dir, "net", "ipam", "*", ip)); len(ipam) != 0 {
		t.Fatalf("address still held: %v", ipam)
	}
	// Only the pool's spare holds an address, until Close.
	if ipam, _ := filepath.Glob(filepath.Join(h.dir, "net", "ipam", "*", "10.*")); len(ipam) != h.nets.Spares(false) {
		t.Fatalf("addresses held: %v, spares %d", ipam, h.nets.Spares(false))
	}
	if _, err := os.Stat(h.nets.Path("crash-1")); err == nil {
		t.Fatal("network namespace left behind")
	}
}
