package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestBuildVerbs")

// normaliseGolden replaces what changes from run to run or machine to
// machine (temporary paths, local times, the snapshot's digest and size,
// which follow the packer) with fixed words.
func normaliseGolden(s string, words []string) string {
	s = strings.NewReplacer(words...).Replace(s)
	for _, r := range []struct{ re, to string }{
		{`\d{4}-\d\d-\d\d \d\d:\d\d`, "LOCALTIME"},
		{`127\.0\.0\.1:\d+`, "HOST:PORT"},
		{`uploaded [\d.]+ [kMG]?B`, "uploaded SIZE"},
		{`"size_bytes": \d+`, `"size_bytes": SIZE`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.to)
	}
	return s
}

// sourceDir is a small source tree with a .gitignore.
func sourceDir(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Makefile": "site:\n\tmkdir -p dist && cp index.html dist/\n", "index.html": "<h1>hi</h1>",
		".gitignore": "dist/\nnode_modules/\n", "dist/old.html": "stale", "node_modules/x/index.js": "x",
		".git/HEAD": "ref: refs/heads/main\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildVerbs runs the verbs of sources, builds and rebuilds against
// the fake API and compares each human and --json output with
// testdata/builds.golden (go test -run TestBuildVerbs -update ./cmd/cairn
// rewrites it).
func TestBuildVerbs(t *testing.T) {
	defer func(p time.Duration) { buildPoll = p }(buildPoll)
	buildPoll = time.Millisecond
	api := newFakeAPI(t)
	src, site := sourceDir(t), siteDir(t)
	snap, err := packSource(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap.remove()
	words := []string{src, "SRC", site, "SITE", snap.SHA256, "SNAPSHOT_SHA256", snap.TreeSHA256, "SNAPSHOT_TREE",
		shortSHA(snap.SHA256), "SNAPSHOT"}
	var golden strings.Builder
	run := func(wantExit int, args ...string) string {
		t.Helper()
		out, stderr, code := cli(t, nil, append(args, "--api", api.URL, "--token", "t")...)
		if code != wantExit {
			t.Fatalf("cairn %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, wantExit, out, stderr)
		}
		golden.WriteString(normaliseGolden("$ cairn "+strings.Join(args, " ")+"\n"+out+stderr, words))
		return out
	}
	run(0, "publish", site, "--deployment", "demo", "--source", src)
	run(0, "publish", site, "--deployment", "demo", "--source", src, "--json")
	run(0, "publish", "--source", src, "--build", "make site", "--builder", "debian-node:2", "--deployment", "fresh",
		"--build-env", "NODE_ENV=production", "--build-timeout", "5m", "--build-memory", "2GiB", "--host", "h1")
	run(0, "publish", "--source", src, "--build", "make site", "--builder", "debian-node:2", "--deployment", "demo", "--no-activate", "--json")
	run(1, "publish", "--source", src, "--build", "make site; false", "--builder", "debian-node:2", "--deployment", "demo")
	run(1, "publish", "--source", src, "--build", "false", "--builder", "debian-node:2", "--deployment", "demo", "--json")
	run(0, "builds", "demo")
	run(0, "builds", "demo", "--json")
	run(0, "logs", "--build", "bld_3")
	run(0, "logs", "--build", "bld_3", "--json")
	run(0, "rebuild", "demo", "2", "--host", "h2")
	run(0, "rebuild", "demo", "2", "--json")
	run(1, "rebuild", "demo", "3")
	run(1, "rebuild", "demo", "3", "--json")
	run(0, "restore", "demo", "1")
	run(0, "restore", "demo", "1", "--json")
	run(1, "restore", "demo", "2")
	run(0, "deployment", "set", "demo", "--source-retention-days", "30")
	run(0, "deployment", "set", "demo", "--source-retention-days", "30", "--json")
	run(0, "version", "show", "demo", "4")
	run(0, "audit", "demo", "--at", "2024-05-02T12:00:00Z")
	run(0, "publish", "--source", src, "--build", "make site", "--builder", "debian-node:2", "--deployment", "demo",
		"--source-date-epoch", "1700000000", "--json")
	run(0, "publish", "--source", src, "--build", "make site", "--builder", "debian-node:2", "--deployment", "demo", "--build-network")
	// Refusals, before anything is sent.
	run(1, "publish", site, "--source", src, "--build", "make", "--builder", "x:1", "--deployment", "demo")
	run(1, "publish", "--source", src, "--build", "make", "--deployment", "demo")
	run(1, "publish", site, "--deployment", "demo", "--builder", "x:1")
	run(1, "publish", "--source", src, "--build", "make", "--builder", "x:1", "--build-env", "1X=2", "--deployment", "demo")
	run(1, "publish", "--source", src, "--build", "make", "--builder", "x:1", "--source-date-epoch", "-5", "--deployment", "demo")
	run(1, "publish", "--source", src, "--build", "make", "--builder", "x:1", "--source-date-epoch", "soon", "--deployment", "demo")
	run(1, "publish", site, "--deployment", "demo", "--source-date-epoch", "1700000000")
	run(1, "publish", site, "--deployment", "demo", "--build-network")

	path := filepath.Join("testdata", "builds.golden")
	var want []byte
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err = os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got := golden.String(); got != string(want) {
		t.Errorf("outputs differ from %s (-update rewrites it):\n%s", path, firstDiff(string(want), got))
	}

	// What was sent: the snapshot once (then found stored), the publish
	// naming it, the build's body.
	var puts, publishes, builds []request
	for _, r := range api.requests() {
		switch {
		case r.Method == "PUT" && strings.Contains(r.Path, "/sources/"):
			puts = append(puts, r)
		case r.Method == "POST" && r.Path == "/v1/deployments/demo/versions":
			publishes = append(publishes, r)
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/builds"):
			builds = append(builds, r)
		}
	}
	if len(puts) != 1 {
		t.Fatalf("the snapshot was uploaded %d times, want once", len(puts))
	}
	sha := strings.TrimPrefix(puts[0].Path, "/v1/deployments/demo/sources/")
	if sha != snap.SHA256 {
		t.Errorf("uploaded snapshot %s, packSource gives %s", sha, snap.SHA256)
	}
	if len(publishes) != 2 || !strings.Contains(publishes[0].Query, "source_sha256="+sha) {
		t.Errorf("publishes %+v do not name the snapshot %s", publishes, sha)
	}
	var body map[string]any
	if err := json.Unmarshal(builds[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{"source_sha256": sha, "builder": "debian-node:2", "command": "make site", "output": "dist",
		"env": map[string]any{"NODE_ENV": "production"}, "timeout": "5m0s", "memory_bytes": float64(2 << 30),
		"activate": true, "create": true, "host": "h1"}
	if g, w := mustJSON(t, body), mustJSON(t, wantBody); g != w {
		t.Errorf("build body\n got %s\nwant %s", g, w)
	}
	body = nil
	if err := json.Unmarshal(builds[1].Body, &body); err != nil || body["activate"] != false || body["create"] != nil {
		t.Errorf("build to demo --no-activate: %s", builds[1].Body)
	}
	// SRC is no git work tree: no epoch is sent but the one given;
	// network only with --build-network (the last).
	for i, b := range builds {
		if got, want := strings.Contains(string(b.Body), "source_date_epoch"), i == len(builds)-2; got != want ||
			want && !strings.Contains(string(b.Body), `"source_date_epoch":1700000000`) {
			t.Errorf("build %d body %s", i, b.Body)
		}
		if got, want := strings.Contains(string(b.Body), "network"), i == len(builds)-1; got != want ||
			want && !strings.Contains(string(b.Body), `"network":true`) {
			t.Errorf("build %d body %s", i, b.Body)
		}
	}
}

// TestBuildWaitInterrupted: an interrupt stops the waiting, not the build,
// and says so; the exit code is an interrupt's.
func TestBuildWaitInterrupted(t *testing.T) {
	defer func(p time.Duration) { buildPoll = p }(buildPoll)
	buildPoll = time.Millisecond
	api := newFakeAPI(t)
	var out, errb strings.Builder
	a := newApp(&out, &errb, func(string) string { return "" })
	// The fake's build never ends: the interrupt comes at the deadline,
	// long after the snapshot is packed and sent, even under -race.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code := a.run(ctx, []string{"publish", "--source", sourceDir(t), "--build", "sleep 1h", "--builder", "x:1",
		"--deployment", "demo", "--api", api.URL, "--token", "t"})
	if code != exitInterrupted || !strings.Contains(errb.String(), "stopped waiting; build bld_1 goes on (cairn builds demo, cairn logs --build bld_1)") {
		t.Errorf("exit %d, stderr %s", code, errb.String())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstDiff shows the first line where want and got differ.
func firstDiff(want, got string) string {
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
			return "line " + strconv.Itoa(i+1) + ":\nwant: " + a + "\ngot:  " + b
		}
	}
	return ""
}

// TestVersionBuildNetwork: `cairn version show` says when a version's
// build had network, and nothing of it when it had none.
func TestVersionBuildNetwork(t *testing.T) {
	for _, network := range []bool{false, true} {
		var out strings.Builder
		printVersionBuild(&out, &meta.Version{Build: &meta.VersionBuild{BuildID: "bld_1", BuilderRef: "tools:1",
			Command: "make", Output: "dist", Network: network}})
		if got := strings.Contains(out.String(), "build net:   yes: its output may depend on what the network served\n"); got != network ||
			!network && strings.Contains(out.String(), "net") {
			t.Errorf("network %t:\n%s", network, out.String())
		}
	}
}
