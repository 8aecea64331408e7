package e2e

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestVerbs")

// normalise replaces what changes from run to run (ids, digests, times,
// ports, temporary paths) with fixed words, so that outputs can be golden.
func normalise(s string) string {
	for _, r := range []struct{ re, to string }{
		{`urn:cairn:request:[0-9a-f]{16}`, "urn:cairn:request:ID"},
		{`ver_[a-z0-9]{20}`, "ver_ID"},
		{`dep_[a-z0-9]{20}`, "dep_ID"},
		{`[0-9a-f]{64}`, "SHA256"},
		{`\b[0-9a-f]{12}(…)?\b`, "SHORTSHA$1"},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`, "TIME"},
		{`\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?`, "TIME"},
		{`127\.0\.0\.1:\d+|localhost:\d+|\.test:\d+`, "HOST:PORT"},
		{`file://[^"\s]+`, "file://PATH"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.to)
	}
	return s
}

// TestVerbs runs the deployment, domain, version and event verbs through
// the real binary against a real server and compares each human and
// --json output with its golden file (go test -run TestVerbs -update
// ./internal/e2e rewrites them).
func TestVerbs(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass")
		return
	}
	e := start(t, withPublicURL("https://sites.example.test"))
	dir := siteDir(t, site("one"))
	var golden strings.Builder
	artDir := t.TempDir() // for a cairn pack artifact; TMP in the golden file
	run := func(wantExit int, args ...string) string {
		t.Helper()
		out, stderr, code := e.runCLI(dir, args...)
		if code != wantExit {
			t.Fatalf("cairn %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, wantExit, out, stderr)
		}
		cmd := strings.ReplaceAll(strings.Join(args, " "), artDir, "TMP")
		golden.WriteString("$ cairn " + normalise(cmd) + "\n" + normalise(out+stderr))
		return out
	}
	run(0, "publish", ".", "--deployment", "blog")
	run(0, "publish", ".", "--deployment", "blog", "--no-activate")
	run(0, "domain", "add", "www.blog.test", "--deployment", "blog")
	run(0, "domain", "add", "pin.blog.test", "--deployment", "blog", "--version", "1")
	run(0, "deployments")
	run(0, "deployments", "--json")
	run(0, "versions", "blog")
	run(0, "version", "show", "blog", "1")
	run(0, "version", "show", "blog", "1", "--json")
	run(0, "domain", "ls")
	run(0, "domain", "ls", "--json")
	run(0, "domain", "set", "pin.blog.test", "--follow")
	run(0, "domain", "set", "pin.blog.test", "--version", "2")
	run(0, "domain", "set", "pin.blog.test", "--version", "2", "--json")
	run(0, "domain", "set", "pin.blog.test", "--https-redirect", "--hsts")
	run(0, "domain", "set", "pin.blog.test", "--hsts=false", "--json")
	run(1, "domain", "set", "pin.blog.test")
	run(0, "domain", "rm", "pin.blog.test")
	run(0, "domain", "rm", "www.blog.test", "--json")
	run(0, "domain", "add", "www.blog.test", "--deployment", "blog")
	run(0, "deployment", "set", "blog", "--retention-days", "7", "--keep-versions", "2")
	run(0, "deployment", "set", "blog", "--retention-days", "7", "--json")
	// publish FILE.tar.zst (a cairn pack artifact), and a delete that succeeds.
	art := filepath.Join(artDir, "site.tar.zst")
	if out, stderr, code := e.runCLI(dir, "pack", ".", "-o", art); code != 0 {
		t.Fatalf("pack: %d %s %s", code, out, stderr)
	}
	run(0, "publish", art, "--deployment", "packed")
	run(0, "publish", art, "--deployment", "packed", "--no-activate", "--json")
	run(0, "deployment", "delete", "packed", "--json")
	since := time.Now().UTC().Format(time.RFC3339Nano) // the events below are blog's delete's
	if resp, _ := e.get("blog--v2.localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("the preview of ready version 2 before the delete: %d", resp.StatusCode)
	}
	run(1, "deployment", "delete", "blog")
	run(1, "deployment", "delete", "blog", "--json")
	run(0, "deployment", "delete", "blog", "--force")
	run(0, "deployments")
	run(0, "deployments", "--deleted")
	run(0, "events", "--deployment", "blog")
	run(0, "events", "--deployment", "blog", "--json")
	run(0, "events", "--deployment", "blog", "--since", since)
	run(0, "events", "--since", since, "--json")

	path := filepath.Join("testdata", "verbs.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got := golden.String(); got != string(want) {
		t.Errorf("outputs differ from %s (-update rewrites it):\n%s", path, lineDiff(string(want), got))
	}

	// The deleted deployment serves nothing, previews of its versions
	// included (every version is archived), and its history says so.
	for _, host := range []string{"blog.localhost", "blog--v1.localhost", "blog--v2.localhost"} {
		if resp, _ := e.get(host, "/"); resp.StatusCode != 404 {
			t.Errorf("%s of a deleted deployment answers %d at the edge", host, resp.StatusCode)
		}
	}
	if code, _ := e.do("GET", "/v1/deployments/blog/history", nil, nil); code != 404 {
		t.Errorf("history of a deleted deployment now: %d, want 404", code)
	}
	// A removed domain's history before its removal still answers.
	var h map[string]any
	if code, _ := e.do("GET", "/v1/domains/pin.blog.test/history?at="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil, nil); code != 404 {
		t.Errorf("a removed domain before it existed: %d", code)
	}
	var evs struct{ Events []map[string]any }
	e.do("GET", "/v1/events?deployment=blog", nil, &evs)
	var addAt string
	for _, ev := range evs.Events {
		if ev["action"] == "domain.repoint" && ev["hostname"] == "pin.blog.test" {
			addAt = ev["at"].(string)
		}
	}
	if code, _ := e.do("GET", "/v1/domains/pin.blog.test/history?at="+addAt, nil, &h); code != 200 || h["version"].(map[string]any)["version_number"] != 2.0 {
		t.Errorf("a removed domain's history while it was pinned: %d %v", code, h)
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\nwant: " + a + "\ngot:  " + b
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func withPublicURL(u string) func(*server.Config) {
	return func(c *server.Config) { c.PublicURL = u }
}

// TestVersionFlag: `cairn --version` of the real binary prints the module
// version and the Go version, not a bare "(devel)", and, built with VCS
// stamping from a plain git checkout (go build -buildvcs=true: GOFLAGS may
// turn it off), the revision it was built from.
func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(cairnBinary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("cairn --version: %v %s", err, out)
	}
	format := regexp.MustCompile(`^cairn version (\(devel\)|v\S+) .*go1\.\d+`)
	if line := strings.TrimSpace(string(out)); !format.MatchString(line) {
		t.Fatalf("cairn --version printed %q", line)
	}
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(self), "..", "..")
	head, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if fi, serr := os.Stat(filepath.Join(repo, ".git")); err != nil || serr != nil || !fi.IsDir() {
		// The go command stamps no revision in a git worktree (.git is a
		// file there) nor outside git.
		t.Logf("not a plain git checkout (%v, %v): the revision is not checked", err, serr)
		return
	}
	bin := filepath.Join(t.TempDir(), "cairn")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/cairn")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	line := strings.TrimSpace(string(out))
	if rev := strings.TrimSpace(string(head))[:12]; err != nil || !format.MatchString(line) || !strings.Contains(line, rev) {
		// "rev <rev>" after (devel), or inside a pseudo-version
		// (v0.0.0-<time>-<rev>), which the go command stamps in a clean clone.
		t.Errorf("cairn --version printed %q (%v), want the revision %s", line, err, rev)
	}
}
