package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildEpochFromGit: a build of a source in a git work tree sends the
// time of its last commit as source_date_epoch (from a subdirectory too);
// --source-date-epoch wins over it; outside a work tree nothing is sent.
func TestBuildEpochFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed")
		}
		t.Skip("git is not installed")
	}
	defer func(p time.Duration) { buildPoll = p }(buildPoll)
	buildPoll = time.Millisecond
	src := sourceDir(t)
	os.RemoveAll(filepath.Join(src, ".git")) // sourceDir's is a stub
	os.MkdirAll(filepath.Join(src, "web"), 0o755)
	os.WriteFile(filepath.Join(src, "web", "index.html"), []byte("hi"), 0o644)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.name=t", "-c", "user.email=t@example.com",
			"-c", "commit.gpgSign=false", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2023-11-14T22:13:20Z", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	plain := t.TempDir() // no work tree (unless TMPDIR is in one)
	os.WriteFile(filepath.Join(plain, "Makefile"), []byte("x"), 0o644)
	outside := gitEpoch(context.Background(), plain)

	api := newFakeAPI(t)
	build := func(dir string, extra ...string) {
		t.Helper()
		args := append([]string{"publish", "--source", dir, "--build", "make site", "--builder", "x:1", "--deployment", "demo",
			"--json", "--api", api.URL, "--token", "t"}, extra...)
		if out, stderr, code := cli(t, nil, args...); code != 0 {
			t.Fatalf("cairn %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
	}
	build(src) // before git init: no epoch
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "first")
	build(src)
	build(filepath.Join(src, "web"))
	build(src, "--source-date-epoch", "1600000000")
	build(plain)

	var epochs []any
	for _, r := range api.requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/builds") {
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			epochs = append(epochs, body["source_date_epoch"])
		}
	}
	// 2023-11-14T22:13:20Z is 1700000000, the committer's date.
	want := []any{nil, float64(1700000000), float64(1700000000), float64(1600000000), nil}
	if outside != nil {
		want[0], want[4] = float64(*outside), float64(*outside)
	}
	if mustJSON(t, epochs) != mustJSON(t, want) {
		t.Errorf("source_date_epoch sent %v, want %v", epochs, want)
	}
}
