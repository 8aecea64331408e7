package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/release"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/overlay"
	"github.com/cairnhq/cairn/internal/runtime/runc"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

var (
	debianOnce sync.Once
	debianRes  *release.Result
	debianArt  []byte
)

// debianBuilder serves the Debian tree (sh, coreutils, sed, bash) as a
// builder release, packed once per test binary.
func (h *host) debianBuilder() *release.Result {
	t := h.t
	tree := runtimetest.DebianTree(t)
	debianOnce.Do(func() {
		t0 := time.Now()
		debianRes, debianArt = runtimetest.Pack(t, tree)
		t.Logf("the Debian builder packed in %s (%d MB)", time.Since(t0).Round(time.Millisecond), len(debianArt)>>20)
	})
	h.art.Add(debianRes.SHA256, debianArt)
	return debianRes
}

// source serves files (path → content) as a source snapshot: a static
// release.
func (h *host) source(files map[string]string) *release.Result {
	t := h.t
	dir := t.TempDir()
	for p, c := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	res, err := release.PackDir(context.Background(), dir, &buf, release.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.art.Add(res.SHA256, buf.Bytes())
	return res
}

var buildSeq atomic.Int64

// newBuildID is a build record id of its own: its runtime id names a
// cgroup, which is the host's, not the test's.
func newBuildID() string {
	return fmt.Sprintf("bld_t%dx%d", time.Now().UnixNano(), buildSeq.Add(1))
}

func newBuild(builder, src *release.Result, cmd, output string) hostapi.Build {
	return hostapi.Build{
		ID:      newBuildID(),
		Builder: builder.SHA256, BuilderTree: builder.TOC.TreeSHA256,
		Source: src.SHA256, SourceTree: src.TOC.TreeSHA256,
		Command: cmd, Output: output, SourceDateEpoch: 1700000000, Timeout: "60s",
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 256 << 20, Pids: 256},
	}
}

// built is one build's outcome.
type built struct {
	res   hostapi.BuildResult
	art   []byte
	log   string
	files map[string]string // of the artifact, when packed
	took  time.Duration
}

// build runs b and checks that nothing of it is left on the host.
func (h *host) build(b hostapi.Build) built {
	t := h.t
	t.Helper()
	var art, log bytes.Buffer
	t0 := time.Now()
	res, err := h.rt.Build(context.Background(), b, &art, &log)
	out := built{res: res, art: art.Bytes(), log: log.String(), took: time.Since(t0)}
	if err != nil {
		t.Fatalf("Build %s: %v\nlog:\n%s", b.ID, err, out.log)
	}
	t.Logf("build %s: exit %d %q, command %d ms, Build %s", b.ID, res.ExitCode, res.Error, res.DurationMS, out.took.Round(time.Millisecond))
	// The Error goes to clients: the build's paths only, never the host's.
	for _, p := range []string{h.dir, filepath.Join(h.dir, "builds"), "/tmp/", os.TempDir() + "/", "/root/"} {
		if strings.Contains(res.Error, p) {
			t.Errorf("the result's error %q holds the host's path %s", res.Error, p)
		}
	}
	h.nothingLeft()
	if res.SHA256 != "" {
		out.files = readArtifact(t, out.art)
	} else if len(out.art) != 0 {
		t.Fatalf("no sha256, yet %d bytes of artifact", len(out.art))
	}
	return out
}

// nothingLeft: no build directory, mount, network namespace or runc
// state of a build under the host's data directory.
func (h *host) nothingLeft() {
	t := h.t
	t.Helper()
	if des, _ := os.ReadDir(filepath.Join(h.dir, "builds")); len(des) != 0 {
		t.Errorf("build directories left: %v", des)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(h.dir, "builds")) {
		t.Errorf("a build's mount is left:\n%s", mounts)
	}
	for _, pat := range []string{"net/ns/b-*", "net/alias/b-*", "runc/b-*", "runc/dirs/b-*"} {
		if left, _ := filepath.Glob(filepath.Join(h.dir, pat)); len(left) != 0 {
			t.Errorf("left: %v", left)
		}
	}
	// host-local's leases: a file per address, holding its container id
	leases, _ := filepath.Glob(filepath.Join(h.dir, "net", "ipam", "*", "*"))
	for _, l := range leases {
		if b, _ := os.ReadFile(l); strings.HasPrefix(string(b), "b-") {
			t.Errorf("a build's address is left: %s (%q)", l, b)
		}
	}
}

// outsideAddr is a host IPv4 address beyond the test bridges (TestEgress
// dials the same), or nil.
func outsideAddr() net.IP {
	var out net.IP
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "ct") || strings.HasPrefix(i.Name, "cairn") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				out = n.IP
			}
		}
	}
	return out
}

// readArtifact reads every regular file of a static release.
func readArtifact(t *testing.T, art []byte) map[string]string {
	t.Helper()
	ctx := context.Background()
	rr := release.ReaderAt(bytes.NewReader(art))
	toc, err := release.ReadTOC(ctx, rr, int64(len(art)))
	if err != nil {
		t.Fatalf("read the artifact's TOC: %v", err)
	}
	files := map[string]string{}
	for i := range toc.Entries {
		e := &toc.Entries[i]
		if e.Type != release.TypeFile {
			continue
		}
		b, err := release.ReadFile(ctx, rr, e)
		if err != nil {
			t.Fatalf("read %s: %v", e.Path, err)
		}
		files[e.Path] = string(b)
	}
	return files
}

// site is a small site's source: pages, a template and the script that
// makes dist/ of them with sh, sed and sort, noting what the build saw.
var site = map[string]string{
	"pages/b.txt":   "Beta\n",
	"pages/a.txt":   "Alpha\n",
	"template.html": "<h1>TITLE</h1>\n",
	"build.sh": `set -e
mkdir -p dist
for f in pages/*.txt; do
	n=$(basename "$f" .txt)
	sed "s/TITLE/$(cat "$f")/" template.html > "dist/$n.html"
done
ls pages | sort -r > dist/index.txt
date -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S %Z' > dist/date.txt
umask > dist/umask.txt
echo "$PWD $HOME $LANG $LC_ALL $TZ $GREETING" > dist/env.txt
echo changed > pages/a.txt
echo new > pages/new.txt
`,
}

// TestBuild runs builds with a Debian builder through runc.
func TestBuild(t *testing.T) {
	h := newHost(t)
	builder := h.debianBuilder()
	src := h.source(site)

	t.Run("Site", func(t *testing.T) {
		h := h.with(t)
		b := newBuild(builder, src, "sh build.sh", "dist")
		b.Env = map[string]string{"GREETING": "hello"}
		first := h.build(b)
		if first.res.ExitCode != 0 || first.res.Error != "" || first.res.SHA256 == "" {
			t.Fatalf("%+v\nlog:\n%s", first.res, first.log)
		}
		want := map[string]string{
			"a.html":    "<h1>Alpha</h1>\n",
			"b.html":    "<h1>Beta</h1>\n",
			"index.txt": "b.txt\na.txt\n",
			"date.txt":  "2023-11-14 22:13:20 UTC\n",
			"umask.txt": "0022\n",
			"env.txt":   "/src /root C.UTF-8 C.UTF-8 UTC hello\n",
		}
		for p, c := range want {
			if first.files[p] != c {
				t.Errorf("%s: %q, want %q", p, first.files[p], c)
			}
		}
		if len(first.files) != len(want) {
			t.Errorf("files %v", first.files)
		}
		// The source in the cache is as it was: the build wrote its copy.
		tree := filepath.Join(h.dir, "cache", "trees", src.SHA256, "tree")
		if b, _ := os.ReadFile(filepath.Join(tree, "pages/a.txt")); string(b) != "Alpha\n" {
			t.Errorf("the cached source's pages/a.txt is %q", b)
		}
		if _, err := os.Stat(filepath.Join(tree, "pages/new.txt")); err == nil {
			t.Error("the build wrote into the cached source")
		}

		// Again, later: the same bytes.
		time.Sleep(1100 * time.Millisecond)
		b.ID = newBuildID()
		second := h.build(b)
		if second.res.SHA256 != first.res.SHA256 {
			t.Fatalf("two builds of the same inputs: %s, then %s", first.res.SHA256, second.res.SHA256)
		}
	})

	t.Run("ExitCode", func(t *testing.T) {
		h := h.with(t)
		got := h.build(newBuild(builder, src, "mkdir dist; echo failing; exit 3", "dist"))
		if got.res.ExitCode != 3 || got.res.Error != "" || got.res.SHA256 != "" {
			t.Fatalf("%+v", got.res)
		}
		if !strings.Contains(got.log, "failing") {
			t.Fatalf("log %q", got.log)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		h := h.with(t)
		b := newBuild(builder, src, "echo started; sleep 60", "dist")
		b.Timeout = "1s"
		got := h.build(b)
		if got.res.ExitCode != -1 || got.res.Error != "timed out after 1s" || got.res.SHA256 != "" {
			t.Fatalf("%+v", got.res)
		}
		if got.took > 10*time.Second || !strings.Contains(got.log, "started") {
			t.Fatalf("Build took %s; log %q", got.took, got.log)
		}
	})

	t.Run("OutOfMemory", func(t *testing.T) {
		h := h.with(t)
		b := newBuild(builder, src, `x=$(head -c 200000000 /dev/zero | tr '\0' x); echo survived`, "dist")
		b.Limits.MemoryBytes = 32 << 20
		got := h.build(b)
		if got.res.ExitCode != 137 || got.res.Error != "killed (exit 137): out of memory?" {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
	})

	t.Run("DiskLimit", func(t *testing.T) {
		h := h.with(t)
		// Killed while it runs: the watch sees 200 MiB in the upper layer.
		b := newBuild(builder, src, "mkdir dist; echo writing; dd if=/dev/zero of=big bs=1M count=200 2>&1; sleep 30", "dist")
		b.DiskBytes = 64 << 20
		got := h.build(b)
		if got.res.ExitCode != -1 || got.res.Error != "killed: wrote more than 64 MiB" || got.res.SHA256 != "" {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
		if got.took > 20*time.Second || !strings.Contains(got.log, "writing") {
			t.Fatalf("Build took %s; log %q", got.took, got.log)
		}
		// Exited before a look, maybe: refused after it.
		b = newBuild(builder, src, "mkdir dist; head -c 100000000 /dev/zero > dist/big", "dist")
		b.DiskBytes = 64 << 20
		got = h.build(b)
		if !strings.HasSuffix(got.res.Error, "wrote more than 64 MiB") || got.res.SHA256 != "" {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
		// Under the limit, the source included: built.
		b = newBuild(builder, src, "mkdir dist; head -c 30000000 /dev/zero > dist/big", "dist")
		b.DiskBytes = 64 << 20
		got = h.build(b)
		if got.res.ExitCode != 0 || got.res.Error != "" || len(got.files["big"]) != 30000000 {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
	})

	t.Run("NoNetwork", func(t *testing.T) {
		h := h.with(t)
		var accepted atomic.Int64
		var addrs []string
		for _, ip := range append([]net.IP{net.IPv4(127, 0, 0, 1)}, hostAddrs()...) {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
			if err != nil && !ip.IsLoopback() {
				continue // the bridge of another test, gone
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			addrs = append(addrs, ln.Addr().String())
		}
		if len(addrs) < 2 {
			t.Logf("no non-loopback address on this host: only the loopback is tried")
		}
		cmd := "mkdir dist; ls /sys/class/net > dist/ifaces; cat /sys/class/net/lo/flags > dist/lo-flags\n"
		for _, a := range addrs {
			host, port, _ := net.SplitHostPort(a)
			cmd += "if timeout 5 bash -c 'echo > /dev/tcp/" + host + "/" + port + "'; then echo connected " + a + "; else echo refused " + a + "; fi >> dist/dial\n"
		}
		got := h.build(newBuild(builder, src, cmd, "dist"))
		if got.res.SHA256 == "" {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
		if d := got.files["dial"]; strings.Contains(d, "connected") || strings.Count(d, "refused") != len(addrs) {
			t.Errorf("dials from the build:\n%s", d)
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("the host's listeners accepted %d connections", n)
		}
		if got.files["ifaces"] != "lo\n" || got.files["lo-flags"] != "0x9\n" {
			t.Errorf("interfaces %q, lo flags %q: want lo only, up", got.files["ifaces"], got.files["lo-flags"])
		}
		t.Logf("dials:\n%s%s", got.files["dial"], got.log)
	})

	t.Run("Network", func(t *testing.T) {
		h := h.with(t)
		// One listener on every host address: the build dials the
		// bridge's gateway and, through its default route and the
		// masquerade, a host address beyond the bridge (as TestEgress).
		var accepted atomic.Int64
		ln, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		_, subnet, err := net.ParseCIDR(h.netCfg.Subnet)
		if err != nil {
			t.Fatal(err)
		}
		gw := subnet.IP.To4()
		gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1)
		addrs := []string{net.JoinHostPort(gw.String(), port)}
		if out := outsideAddr(); out != nil {
			addrs = append(addrs, net.JoinHostPort(out.String(), port))
		} else {
			t.Logf("no host address beyond the bridge: only the gateway is tried")
		}
		cmd := "mkdir dist; ls /sys/class/net > dist/ifaces; cat /sys/class/net/lo/flags > dist/lo-flags; cat /etc/resolv.conf > dist/resolv\n"
		for _, a := range addrs {
			host, port, _ := net.SplitHostPort(a)
			cmd += "if timeout 5 bash -c 'echo > /dev/tcp/" + host + "/" + port + "'; then echo connected " + a + "; else echo refused " + a + "; fi >> dist/dial\n"
		}
		b := newBuild(builder, src, cmd, "dist")
		b.Network = true
		got := h.build(b)
		if got.res.SHA256 == "" {
			t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
		}
		if d := got.files["dial"]; strings.Contains(d, "refused") || strings.Count(d, "connected") != len(addrs) {
			t.Errorf("dials from the build:\n%s", d)
		}
		if n := accepted.Load(); n < int64(len(addrs)) {
			t.Errorf("the host's listener accepted %d connections, want %d", n, len(addrs))
		}
		if got.files["ifaces"] != "eth0\nlo\n" || got.files["lo-flags"] != "0x9\n" {
			t.Errorf("interfaces %q, lo flags %q: want eth0 and lo, up", got.files["ifaces"], got.files["lo-flags"])
		}
		if !strings.Contains(got.files["resolv"], "nameserver ") {
			t.Errorf("resolv.conf of a build with network: %q", got.files["resolv"])
		}
		// h.build checked the namespace and the leases; the veth and the
		// masquerade rules went too.
		if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", h.netCfg.Bridge, "brif")); len(ports) != 0 {
			t.Errorf("ports left on the bridge %s: %v", h.netCfg.Bridge, ports)
		}
		rid := "b-" + strings.TrimPrefix(b.ID, "bld_")
		if out, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil && strings.Contains(string(out), rid) {
			t.Errorf("NAT rules of %s left:\n%s", rid, out)
		}
		t.Logf("dials:\n%s%s", got.files["dial"], got.log)
	})

	t.Run("OutputSymlinkToHost", func(t *testing.T) {
		h := h.with(t)
		hostDir := t.TempDir()
		os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host\n"), 0o600)
		for _, c := range []struct{ cmd, output, want string }{
			{"ln -s " + hostDir + " dist", "dist", "output dist: is a symlink"},
			{"mkdir site; ln -s " + hostDir + " site/dist", "site/dist", "output site/dist: is a symlink"},
			{"ln -s " + hostDir + " site; mkdir -p " + hostDir + "/dist", "site/dist", "output site: is a symlink"},
			{"cd /; rm -rf /src; ln -s " + hostDir + " /src", ".", "output /src: is a symlink"},
			{"echo x > dist", "dist", "output dist: not a directory"},
			{"true", "dist", "output dist: no such directory"},
			{"true", strings.Repeat("d", 300), "output " + strings.Repeat("d", 300) + ": file name too long"},
			{"mkdir dist; mkfifo dist/p", "dist", "output dist/p: a device, fifo or socket; only files, directories and links are packed"},
			{"mkdir -p dist/a; ln -s .. dist/a/up; ln -s a/up/.. dist/l", "dist", "output dist/l: a link that leaves the output"},
		} {
			got := h.build(newBuild(builder, src, c.cmd, c.output))
			if got.res.ExitCode != 0 || got.res.Error != c.want || got.res.SHA256 != "" {
				t.Errorf("%s: %+v, want %q\nlog:\n%s", c.cmd, got.res, c.want, got.log)
			}
		}
		os.Remove(filepath.Join(hostDir, "dist"))
		if des, _ := os.ReadDir(hostDir); len(des) != 1 {
			t.Errorf("the host directory holds %v", des)
		}
	})

	t.Run("SymlinkLeavesOutput", func(t *testing.T) {
		h := h.with(t)
		for _, link := range []string{"/etc/passwd", "../build.sh"} {
			got := h.build(newBuild(builder, src, "mkdir dist; echo hi > dist/index.html; ln -s "+link+" dist/l", "dist"))
			if got.res.ExitCode != 0 || got.res.Error != "output dist/l: a link that leaves the output" || got.res.SHA256 != "" {
				t.Errorf("a link to %s: %+v", link, got.res)
			}
			t.Logf("a link to %s: %s", link, got.res.Error)
		}
	})
}

// with is h for a subtest: its failures are t's.
func (h *host) with(t *testing.T) *host {
	c := *h
	c.t = t
	return &c
}

// hostAddrs are the host's non-loopback IPv4 addresses.
func hostAddrs() []net.IP {
	var out []net.IP
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				out = append(out, n.IP)
			}
		}
	}
	return out
}

// TestBuildSrcSymlinkToHost: a builder whose /src is a symlink to a host
// directory gets the source in a /src of its own; the host directory is
// untouched.
func TestBuildSrcSymlinkToHost(t *testing.T) {
	h := newHost(t)
	hostDir := t.TempDir()
	sentinel := filepath.Join(hostDir, "sentinel")
	os.WriteFile(sentinel, []byte("host\n"), 0o644)
	root := toolsRoot(t, "sh")
	if err := os.Symlink(hostDir, filepath.Join(root, "src")); err != nil {
		t.Fatal(err)
	}
	builder := h.publish(root)
	src := h.source(map[string]string{"a.txt": "from the source\n", "sentinel": "from the source\n"})
	got := h.build(newBuild(builder, src, `while read l; do echo "$l"; done < a.txt > copied.txt; echo build > sentinel`, "."))
	if got.res.SHA256 == "" {
		t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
	}
	if got.files["copied.txt"] != "from the source\n" || got.files["sentinel"] != "build\n" {
		t.Fatalf("artifact %v", got.files)
	}
	if b, _ := os.ReadFile(sentinel); string(b) != "host\n" {
		t.Fatalf("the host's sentinel is %q", b)
	}
	if des, _ := os.ReadDir(hostDir); len(des) != 1 {
		t.Fatalf("the host directory holds %v", des)
	}
}

// TestBuildSrcOpaque: a builder with a /src directory of its own: the
// build's /src holds the source and nothing of the builder's.
func TestBuildSrcOpaque(t *testing.T) {
	h := newHost(t)
	root := toolsRoot(t, "sh")
	os.MkdirAll(filepath.Join(root, "src", "pages"), 0o755)
	os.WriteFile(filepath.Join(root, "src", "builder-only"), []byte("builder\n"), 0o644)
	os.WriteFile(filepath.Join(root, "src", "pages", "builder-page"), []byte("builder\n"), 0o644)
	builder := h.publish(root)
	src := h.source(map[string]string{"pages/a.txt": "from the source\n"})
	got := h.build(newBuild(builder, src, "echo built > out.txt", "."))
	if got.res.SHA256 == "" {
		t.Fatalf("%+v\nlog:\n%s", got.res, got.log)
	}
	want := map[string]string{"pages/a.txt": "from the source\n", "out.txt": "built\n"}
	if len(got.files) != len(want) || got.files["pages/a.txt"] != want["pages/a.txt"] || got.files["out.txt"] != want["out.txt"] {
		t.Fatalf("artifact %v, want %v", got.files, want)
	}
}

// TestBuildLeftBehind: builds an agent process left when it died (their
// processes running, their roots mounted, their namespaces bound; one
// with network, so with an address, a veth and masquerade rules) are
// removed by the next Runtime over the same directory.
func TestBuildLeftBehind(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	lower := toolsRoot(t, "sh", "sleep")
	d, err := runc.New(filepath.Join(h.dir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"b-left", "b-leftnet"}
	for _, id := range ids {
		dir := filepath.Join(h.dir, "builds", id)
		root := overlay.Root{Lower: lower, Dir: dir}
		if err := root.Mount(nil); err != nil {
			t.Fatal(err)
		}
		if err := h.nets.Isolated(id); err != nil {
			t.Fatal(err)
		}
		network := id == "b-leftnet"
		t.Cleanup(func() { // if the Runtime did not
			d.Delete(ctx, id, true)
			root.Remove()
			if network {
				h.nets.Del(ctx, id, true)
			}
			h.nets.Remove(id)
		})
		if network { // as Build does: the mark, then the address
			if err := os.WriteFile(filepath.Join(dir, "net"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := h.nets.Add(ctx, id, true); err != nil {
				t.Fatal(err)
			}
		}
		err = d.Start(ctx, cruntime.Spec{ID: id, Dir: dir, Root: root.Merged(), NetNS: h.nets.Path(id),
			Log: filepath.Join(dir, "log"), Args: []string{"/bin/sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		if s, err := d.Status(ctx, id); err != nil || !s.Running {
			t.Fatalf("the left build %s's process: %+v, %v", id, s, err)
		}
	}
	h.rt.Close()
	h.rt = h.open()
	for _, id := range ids {
		if _, err := d.Status(ctx, id); !errors.Is(err, cruntime.ErrNotFound) {
			t.Fatalf("the build %s's process: %v, want it gone", id, err)
		}
	}
	h.with(t).nothingLeft()
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", h.netCfg.Bridge, "brif")); len(ports) != 0 {
		t.Errorf("ports left on the bridge %s: %v", h.netCfg.Bridge, ports)
	}
	if out, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil && strings.Contains(string(out), `b-leftnet\"`) {
		t.Errorf("NAT rules of b-leftnet left:\n%s", out)
	}
}

// toolsRoot is a root filesystem holding the host's programs names
// (found on $PATH; "sh" is /bin/sh) in /bin, and the libraries they
// load.
func toolsRoot(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{}
	for _, name := range names {
		p := "/bin/sh"
		if name != "sh" {
			var err error
			if p, err = exec.LookPath(name); err != nil {
				t.Fatal(err)
			}
		}
		p, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		files["bin/"+name] = p
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", p, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "/") {
					files[strings.TrimPrefix(f, "/")] = f
				}
			}
		}
	}
	for dst, from := range files {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		dst = filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
