package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// buildScript generates a small site with the builder's tools (sh, sed,
// sort) and records what the build saw: its environment, whether it
// reached a listener of the host, and what /tmp and / hold.
const buildScript = `set -eu
mkdir -p dist
{
  echo "<h1>$(cat title.txt)</h1><ul>"
  for f in $(ls pages | sort); do echo "<li>$(sed -n 1p "pages/$f" | tr a-z A-Z)</li>"; done
  echo "</ul>"
} > dist/index.html
echo "epoch=$SOURCE_DATE_EPOCH tz=$TZ lang=$LANG umask=$(umask) greeting=$GREETING" > dist/env.txt
if bash -c "echo hi > /dev/tcp/$PROBE_ADDR/$PROBE_PORT" 2>/dev/null; then echo reached; else echo unreachable; fi > dist/net.txt
ls -a /tmp /src /root /var/tmp | tr '\n' ' ' > dist/seen.txt
for d in /tmp /root /var/tmp .; do echo mine > "$d/secret-$(cat title.txt)"; done
`

// sourceTree writes a source tree titled title: the script, pages, a
// .gitignore and what it and the defaults leave out of the snapshot.
func sourceTree(t *testing.T, title string) string {
	t.Helper()
	return siteDir(t, map[string]string{
		"build.sh":             buildScript,
		"title.txt":            title,
		"pages/b.md":           "second page\n",
		"pages/a.md":           "first page\n",
		".gitignore":           "node_modules/\n*.log\n",
		"node_modules/x/x.js":  "ignored " + title,
		"debug.log":            "ignored " + title,
		".git/config":          "[core]\n" + title,
		".git/objects/ab/cdef": title,
	})
}

// hostAddr is a non-loopback IPv4 address of this host ("" if none).
func hostAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

// edgeGet is the status and body of path of host at the edge.
func edgeGet(t *testing.T, e *env, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.edge+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// httpGetBytes is the body of an API GET (admin token).
func httpGetBytes(t *testing.T, e *env, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", e.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// TestBuilds is issue 19's acceptance, through the real CLI, a server
// and two real `cairn agent --driver runc` processes. A Debian tree is the
// builder (a rootfs version). A small site is built on the platform from
// its source snapshot and served; it rebuilds to the same sha256 on
// either host. The snapshot of the same tree elsewhere (other mtimes,
// other ignored files) has the same sha256 and leaves .git/ and what
// .gitignore lists out. The build saw SOURCE_DATE_EPOCH, TZ, the locale
// and umask, reached no listener of the host and saw no other build's
// files. A build that writes the time rebuilds to "differs" naming that
// file. A version whose release was collected is restored by a rebuild:
// it serves again with the same sha256, and the audit log shows the
// collection and the restore. A failing command leaves a failed build
// and no version.
func TestBuilds(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass: the storage backends are tested by the meta and blob suites")
		return
	}
	debian := runtimetest.DebianTree(t)
	e, first := agentEnvWith(t, gcNow, "cairne2e7", "10.91.7.0/24", "runc")
	second := &runcAgent{t: t, e: e, tok: first.tok, data: t.TempDir(), bridge: "cairne2e8", subnet: "10.91.8.0/24"}
	t.Cleanup(second.cleanup)
	second.start()
	hosts := func() []string {
		var hs struct{ Hosts []map[string]any }
		e.do("GET", "/v1/hosts", nil, &hs)
		var ids []string
		for _, h := range hs.Hosts {
			if h["state"] == "ready" {
				ids = append(ids, fmt.Sprint(h["id"]))
			}
		}
		return ids
	}
	waitUntil(t, "2 hosts ready", 20*time.Second, func() bool { return len(hosts()) == 2 })
	hostIDs := hosts()

	// A listener of the host that no build may reach.
	probeAddr := hostAddr(t)
	if probeAddr == "" {
		probeAddr = "10.91.7.1" // the first agent's bridge
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(probeAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	_, probePort, _ := net.SplitHostPort(ln.Addr().String())

	dir := t.TempDir()
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return e.runCLI(dir, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(args...)
		if code != 0 {
			t.Fatalf("cairn %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	e.publishRootfs("tools", debian, "--cmd", "/bin/true")

	type published struct {
		Source struct {
			SHA256   string `json:"sha256"`
			Uploaded bool   `json:"uploaded"`
			Sent     *struct {
				Files  int   `json:"files"`
				New    int   `json:"new"`
				Reused int64 `json:"bytes_reused"`
			} `json:"sent"`
		} `json:"source"`
		Build   meta.Build   `json:"build"`
		Version meta.Version `json:"version"`
	}
	build := func(dep, src, command string, extra ...string) published {
		t.Helper()
		args := append([]string{"publish", "--source", src, "--build", command, "--builder", "tools:1",
			"--deployment", dep, "--build-env", "GREETING=hello", "--build-env", "PROBE_ADDR=" + probeAddr,
			"--build-env", "PROBE_PORT=" + probePort, "--json"}, extra...)
		var p published
		if err := json.Unmarshal([]byte(must(args...)), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A build on the platform, served by the edge.
	src := sourceTree(t, "hello")
	t0 := time.Now()
	// v1 and v2 build on one host, so that v2 could see what v1 left.
	v1 := build("site", src, "sh build.sh", "--host", hostIDs[0])
	t.Logf("built and published %v after the request (builder fetched on its host); build %s on %s took %d ms",
		time.Since(t0).Round(time.Millisecond), v1.Build.ID, v1.Build.Host, v1.Build.DurationMS)
	if v1.Build.State != meta.BuildSucceeded || v1.Version.VersionNumber != 1 || !v1.Version.SourceSnapshot ||
		v1.Version.SourceSHA256 != v1.Source.SHA256 || v1.Version.Build == nil || v1.Version.Build.Command != "sh build.sh" ||
		v1.Version.Build.LogSHA256 == "" || v1.Version.Build.Builder == "" || v1.Version.Build.SourceDateEpoch == 0 {
		t.Fatalf("the build's version: %+v (build %+v)", v1.Version, v1.Build)
	}
	code, v1Body := edgeGet(t, e, "site.localhost", "/")
	if code != 200 || v1Body != "<h1>hello</h1><ul>\n<li>FIRST PAGE</li>\n<li>SECOND PAGE</li>\n</ul>\n" {
		t.Errorf("the edge serves %d %q", code, v1Body)
	}
	_, env := edgeGet(t, e, "site.localhost", "/env.txt")
	if want := fmt.Sprintf("epoch=%d tz=UTC lang=C.UTF-8 umask=0022 greeting=hello\n", v1.Version.Build.SourceDateEpoch); env != want {
		t.Errorf("the build saw %q, want %q", env, want)
	}
	if _, reach := edgeGet(t, e, "site.localhost", "/net.txt"); reach != "unreachable\n" || reached.Load() != 0 {
		t.Errorf("the build's connection to %s:%s: %q, %d connections seen", probeAddr, probePort, reach, reached.Load())
	}

	// The snapshot of the same tree elsewhere: other mtimes, other
	// ignored contents, the same sha256 (uploaded once).
	elsewhere := sourceTree(t, "hello")
	os.WriteFile(filepath.Join(elsewhere, "node_modules", "x", "x.js"), []byte("something else"), 0o644)
	os.WriteFile(filepath.Join(elsewhere, ".git", "HEAD"), []byte("ref: refs/heads/x\n"), 0o644)
	old := time.Now().Add(-48 * time.Hour)
	filepath.Walk(elsewhere, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
	v2 := build("site", elsewhere, "sh build.sh", "--host", hostIDs[0])
	if v1.Build.Host != hostIDs[0] || v2.Build.Host != hostIDs[0] {
		t.Errorf("pinned builds ran on %s and %s, not %s", v1.Build.Host, v2.Build.Host, hostIDs[0])
	}
	if v2.Source.SHA256 != v1.Source.SHA256 || v2.Source.Uploaded {
		t.Errorf("the same tree elsewhere: snapshot %s (uploaded %v), want %s, not uploaded", v2.Source.SHA256, v2.Source.Uploaded, v1.Source.SHA256)
	}
	if v2.Version.ArtifactSHA256 != v1.Version.ArtifactSHA256 {
		t.Errorf("a second build of the same snapshot gave %s, the first %s", v2.Version.ArtifactSHA256, v1.Version.ArtifactSHA256)
	}
	// The snapshot leaves .git/ and what .gitignore lists out.
	var rel struct {
		TreeSHA256 string `json:"tree_sha256"`
		Kind       string `json:"kind"`
	}
	e.do("GET", "/v1/deployments/site/sources/"+v1.Source.SHA256, nil, &rel)
	if rel.Kind != meta.KindSource {
		t.Errorf("the snapshot's release kind %q", rel.Kind)
	}
	_, seen := edgeGet(t, e, "site.localhost", "/seen.txt")
	names := map[string]bool{}
	for _, f := range strings.Fields(seen) {
		names[f] = true
		if strings.HasPrefix(f, "secret-") {
			t.Errorf("the build saw another build's %s: %q", f, seen)
		}
	}
	for _, leaked := range []string{".git", "node_modules", "debug.log"} {
		if names[leaked] {
			t.Errorf("the build saw %q in /src: %q", leaked, seen)
		}
	}
	if !strings.Contains(seen, ".gitignore") || !strings.Contains(seen, "build.sh") {
		t.Errorf("the build's /src: %q", seen)
	}

	// Rebuilds: reproducible, on each host.
	for _, h := range hostIDs {
		out, errOut, code := cli("rebuild", "site", "1", "--host", h, "--json")
		var b meta.Build
		if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.Verdict != meta.VerdictReproducible || b.Host != h {
			t.Fatalf("rebuild on %s: exit %d, %+v\n%s%s", h, code, b, out, errOut)
		}
	}
	var got meta.Version
	e.do("GET", "/v1/deployments/site/versions/1", nil, &got)
	if got.Rebuild == nil || got.Rebuild.Verdict != meta.VerdictReproducible || got.Rebuild.SHA256 != got.ArtifactSHA256 {
		t.Errorf("version 1's rebuild record: %+v", got.Rebuild)
	}

	// Made non-reproducible on purpose: it writes the time.
	clock := build("clock", sourceTree(t, "clock"), "sh build.sh && date +%s%N > dist/time.txt")
	out, _, code := cli("rebuild", "clock", fmt.Sprint(clock.Version.VersionNumber), "--json")
	var differs meta.Build
	if code != 1 || json.Unmarshal([]byte(out), &differs) != nil || differs.Verdict != meta.VerdictDiffers ||
		strings.Join(differs.Differs, ",") != "time.txt" {
		t.Errorf("rebuild of a build that writes the time: exit %d, verdict %q, differs %v\n%s", code, differs.Verdict, differs.Differs, out)
	}
	if human, _, _ := cli("rebuild", "clock", "1"); !strings.Contains(human, "differs") || !strings.Contains(human, "time.txt") {
		t.Errorf("cairn rebuild (human): %q", human)
	}

	// A failing command: a failed build, its log, no version.
	bad := sourceTree(t, "bad")
	out, errOut, code := cli("publish", "--source", bad, "--build", "echo compiling; exit 3", "--builder", "tools:1",
		"--deployment", "broken", "--json")
	var failed struct {
		Build   meta.Build `json:"build"`
		LogTail []string   `json:"log_tail"`
	}
	if code == 0 || json.Unmarshal([]byte(out), &failed) != nil || failed.Build.State != meta.BuildFailed ||
		failed.Build.ExitCode == nil || *failed.Build.ExitCode != 3 || !strings.Contains(strings.Join(failed.LogTail, "\n"), "compiling") {
		t.Errorf("a failing build: exit %d, %+v\n%s%s", code, failed, out, errOut)
	}
	if c, _ := e.do("GET", "/v1/deployments/broken", nil, nil); c != 404 {
		t.Errorf("a failed first build left deployment broken: %d", c)
	}
	if log := must("logs", "--build", failed.Build.ID); !strings.Contains(log, "compiling") {
		t.Errorf("cairn logs --build: %q", log)
	}
	if list := must("builds", "site"); !strings.Contains(list, "reproducible") {
		t.Errorf("cairn builds site:\n%s", list)
	}

	// Restore: a new version is active, version 1's release is collected
	// (retention 0), then rebuilt and stored again.
	v3 := build("site", sourceTree(t, "third"), "sh build.sh")
	if v3.Version.ArtifactSHA256 == v1.Version.ArtifactSHA256 {
		t.Fatal("a third title built the same release")
	}
	// Its snapshot went by the digest-first protocol: only title.txt was
	// new, the rest reused from the first snapshot.
	if s := v3.Source.Sent; !v3.Source.Uploaded || s == nil || s.New != 1 || s.Files != 5 || s.Reused == 0 {
		t.Errorf("the third snapshot's upload: %+v (uploaded %v), want 1 content of 5 sent, the rest reused", s, v3.Source.Uploaded)
	}
	must("deployment", "set", "site", "--retention-days", "0")
	must("gc")
	e.do("GET", "/v1/deployments/site/versions/1", nil, &got)
	if got.Status != meta.StatusCollected {
		t.Fatalf("version 1 after a collection: %s", got.Status)
	}
	if out, errOut, code := cli("rollback", "site", "--to", "1"); code == 0 {
		t.Errorf("rollback to a collected version: exit 0\n%s%s", out, errOut)
	}
	out, errOut, code = cli("restore", "site", "1", "--json")
	var restored meta.Build
	if code != 0 || json.Unmarshal([]byte(out), &restored) != nil || restored.State != meta.BuildSucceeded {
		t.Fatalf("cairn restore site 1: exit %d, %+v\n%s%s", code, restored, out, errOut)
	}
	e.do("GET", "/v1/deployments/site/versions/1", nil, &got)
	if got.Status != meta.StatusArchived || got.ArtifactSHA256 != v1.Version.ArtifactSHA256 {
		t.Errorf("version 1 after the restore: %s %s", got.Status, got.ArtifactSHA256)
	}
	must("rollback", "site", "--to", "1")
	if code, body := edgeGet(t, e, "site.localhost", "/"); code != 200 || body != v1Body {
		t.Errorf("the restored version serves %d %q, want %q", code, body, v1Body)
	}
	var rel1 struct {
		SizeBytes   int64      `json:"size_bytes"`
		CollectedAt *time.Time `json:"collected_at"`
	}
	e.do("GET", "/v1/releases/"+v1.Version.ArtifactSHA256, nil, &rel1)
	art := httpGetBytes(t, e, "/v1/releases/"+v1.Version.ArtifactSHA256+"/artifact")
	if sum := sha256.Sum256(art); hex.EncodeToString(sum[:]) != v1.Version.ArtifactSHA256 || rel1.CollectedAt != nil ||
		int64(len(art)) != rel1.SizeBytes {
		t.Errorf("the restored artifact: %d bytes of sha256 %x, release %+v; want %s", len(art), sum, rel1, v1.Version.ArtifactSHA256)
	}

	// A restore that does not reproduce stores nothing: clock's first
	// version, collected, rebuilds to another sha256.
	build("clock", sourceTree(t, "clock2"), "sh build.sh")
	must("deployment", "set", "clock", "--retention-days", "0")
	must("gc")
	out, errOut, code = cli("restore", "clock", "1", "--json")
	var refused meta.Build
	json.Unmarshal([]byte(out), &refused)
	if code == 0 || refused.State != meta.BuildFailed || !strings.Contains(refused.Error, "nothing was restored") {
		t.Errorf("restore of a version that does not reproduce: exit %d, %+v\n%s%s", code, refused, out, errOut)
	}
	e.do("GET", "/v1/deployments/clock/versions/1", nil, &got)
	if got.Status != meta.StatusCollected {
		t.Errorf("clock v1 after a refused restore: %s", got.Status)
	}
	if refused.ArtifactSHA256 != "" {
		if c, _ := e.do("GET", "/v1/releases/"+refused.ArtifactSHA256, nil, nil); c != 404 {
			t.Errorf("the refused restore's release %s: %d, want 404 (nothing stored)", refused.ArtifactSHA256, c)
		}
	}
	var evs struct{ Events []meta.Event }
	e.do("GET", "/v1/events?deployment=site", nil, &evs)
	actions := map[string]bool{}
	for _, ev := range evs.Events {
		if ev.VersionID == v1.Version.ID {
			actions[ev.Action] = true
		}
	}
	for _, a := range []string{meta.ActionCollect, meta.ActionRestore, meta.ActionRebuild} {
		if !actions[a] {
			t.Errorf("no %s event of version 1 in the audit log (%v)", a, actions)
		}
	}
	if audit := must("audit", "site", "--at", time.Now().UTC().Format(time.RFC3339Nano)); !strings.Contains(audit, "reproducible") {
		t.Errorf("cairn audit site:\n%s", audit)
	}
	if reached.Load() != 0 {
		t.Errorf("%d connections from builds reached the host's listener", reached.Load())
	}
}
