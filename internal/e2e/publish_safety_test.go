package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cairnhq/cairn/internal/server"
)

// readmeServer is `cairn server` (the real binary) running in dir, as the
// README runs it: its data directory is dir/cairn-data. In the scale-out
// pass its metadata and releases are in PostgreSQL and S3 (useBackends).
type readmeServer struct {
	t         *testing.T
	bin, dir  string
	api, edge string
	token     string
}

func startReadme(t *testing.T, args ...string) *readmeServer {
	t.Helper()
	s := &readmeServer{t: t, bin: cairnBinary(t), dir: t.TempDir(), api: freeAddr(t), edge: freeAddr(t)}
	// The schema and bucket go before the server's cleanup, which then
	// runs first: the process stops before they are removed.
	var cfg server.Config
	useBackends(t, &cfg)
	if cfg.Database != "" {
		args = append(args, "--database", cfg.Database, "--blobs", cfg.Blobs)
	}
	srv := exec.Command(s.bin, append([]string{"server", "--api-addr", s.api, "--edge-addr", s.edge}, args...)...)
	srv.Dir = s.dir
	srv.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=warn")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(os.Interrupt); srv.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", s.api); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("server did not listen in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(s.dir, "cairn-data", "token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

// cli runs the CLI in the server's directory and returns stdout, stderr
// and the exit code.
func (s *readmeServer) cli(args ...string) (string, string, int) {
	s.t.Helper()
	c := exec.Command(s.bin, append(args, "--api", "http://"+s.api)...)
	c.Dir = s.dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		s.t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// ok runs the CLI and fails the test unless it exits 0.
func (s *readmeServer) ok(args ...string) string {
	s.t.Helper()
	out, errs, code := s.cli(args...)
	if code != 0 {
		s.t.Fatalf("cairn %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs the CLI, wants a non-zero exit and stderr containing want.
func (s *readmeServer) fails(want string, args ...string) {
	s.t.Helper()
	out, errs, code := s.cli(args...)
	if code == 0 || !strings.Contains(errs, want) {
		s.t.Fatalf("cairn %s: exit %d, want non-zero and %q on stderr\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), code, want, out, errs)
	}
}

func (s *readmeServer) apiGet(path string, out any) int {
	s.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			s.t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// deployments lists the deployments' names through the API.
func (s *readmeServer) deployments() []string {
	s.t.Helper()
	var ds struct {
		Deployments []struct {
			Name string `json:"name"`
		} `json:"deployments"`
	}
	if code := s.apiGet("/v1/deployments", &ds); code != 200 {
		s.t.Fatalf("list deployments: %d", code)
	}
	var names []string
	for _, d := range ds.Deployments {
		names = append(names, d.Name)
	}
	return names
}

// versionCount counts a deployment's versions through the API.
func (s *readmeServer) versionCount(dep string) int {
	s.t.Helper()
	var page struct {
		Versions []json.RawMessage `json:"versions"`
	}
	if code := s.apiGet("/v1/deployments/"+dep+"/versions?limit=100", &page); code != 200 {
		s.t.Fatalf("list versions of %s: %d", dep, code)
	}
	return len(page.Versions)
}

// fetch gets path from the edge at host.
func (s *readmeServer) fetch(host, path string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.edge+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPublishRefusesDataDir: `cairn publish .` where the README runs the
// server (its data directory, with the admin token, inside the tree) is
// refused, with or without --include-ignored, and nothing is served: not the
// token, not .env, not .git/config. An unmarked data directory of an older
// server (token + cairn.db) is refused too, and `cairn pack` refuses alike.
func TestPublishRefusesDataDir(t *testing.T) {
	s := startReadme(t)
	writeFiles(t, s.dir, map[string]string{
		"index.html":  "<h1>home</h1>",
		".env":        "SECRET=1",
		".git/config": "[core]",
	})
	if _, err := os.Stat(filepath.Join(s.dir, "cairn-data", ".cairn-data")); err != nil {
		t.Fatalf("the server did not mark its data directory: %v", err)
	}
	s.fails("data directory", "publish", ".", "--deployment", "demo")
	s.fails("data directory", "publish", ".", "--deployment", "demo", "--include-ignored")
	s.fails("data directory", "publish", ".", "--deployment", "demo", "--json")
	s.fails("data directory", "pack", ".", "-o", filepath.Join(t.TempDir(), "r.tar.zst"))
	// Even a .cairnignore that lists it does not make it publishable.
	writeFiles(t, s.dir, map[string]string{".cairnignore": "cairn-data/\n"})
	s.fails("data directory", "publish", ".", "--deployment", "demo")
	if got := s.deployments(); len(got) != 0 {
		t.Fatalf("a refused publish left deployments %v", got)
	}
	for _, p := range []string{"/cairn-data/token", "/cairn-data/cairn.db", "/.env", "/.git/config", "/"} {
		if code, body := s.fetch("demo.localhost", p); code == 200 || strings.Contains(body, s.token) {
			t.Errorf("edge %s: %d %q", p, code, body)
		}
	}

	// An old data directory, without the marker, nested deeper.
	site := filepath.Join(t.TempDir(), "site")
	writeFiles(t, site, map[string]string{
		"index.html":         "<h1>site</h1>",
		"sub/old/token":      s.token,
		"sub/old/cairn.db":   "SQLite format 3",
		"sub/other/page.txt": "x",
	})
	s.fails("data directory", "publish", site, "--deployment", "demo")
	s.fails("data directory", "pack", site, "-o", filepath.Join(t.TempDir(), "r.tar.zst"))
	if got := s.deployments(); len(got) != 0 {
		t.Fatalf("a refused publish left deployments %v", got)
	}
}

type excludedSummary struct {
	Paths int `json:"paths"`
	Rules []struct {
		Rule   string `json:"rule"`
		Source string `json:"source"`
		Paths  int    `json:"paths"`
	} `json:"rules"`
}

// TestPublishExcludes: the default rules and a .cairnignore leave paths out
// of a publish (and of a pack of the same tree: same sha256), the summary
// counts them by rule in both forms, and --include-ignored publishes them.
func TestPublishExcludes(t *testing.T) {
	s := startReadme(t)
	site := filepath.Join(t.TempDir(), "site")
	writeFiles(t, site, map[string]string{
		"index.html":       "<h1>site</h1>",
		".env":             "SECRET=1",
		".env.production":  "SECRET=2",
		".git/config":      "[core]",
		".git/HEAD":        "ref: refs/heads/main",
		"img/.DS_Store":    "junk",
		"app.js.map":       "{}",
		"vendor.js.map":    "{}",
		"keep.js.map":      "{}",
		"drafts/post.html": "draft",
		".well-known/x":    "served",
		".cairnignore":     "# source maps\n*.map\n!keep.js.map\n\n/drafts/\n",
	})
	var out struct {
		ArtifactSHA256 string          `json:"artifact_sha256"`
		VersionNumber  int64           `json:"version_number"`
		Excluded       excludedSummary `json:"excluded"`
	}
	if err := json.Unmarshal([]byte(s.ok("publish", site, "--deployment", "demo", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	// .git/ (1 dir), .env, .env.production, img/.DS_Store, .cairnignore,
	// app.js.map, vendor.js.map, drafts/ (1 dir).
	if out.Excluded.Paths != 8 {
		t.Errorf("excluded paths = %d, want 8: %+v", out.Excluded.Paths, out.Excluded)
	}
	want := map[string]int{".git/ default": 1, ".env default": 1, ".env.* default": 1, ".DS_Store default": 1,
		".cairnignore default": 1, "*.map .cairnignore:2": 2, "/drafts/ .cairnignore:5": 1}
	got := map[string]int{}
	for _, r := range out.Excluded.Rules {
		got[r.Rule+" "+r.Source] = r.Paths
	}
	if len(got) != len(want) {
		t.Errorf("rules = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("rule %s left out %d paths, want %d (all: %v)", k, got[k], n, got)
		}
	}
	for path, wantCode := range map[string]int{
		"/": 200, "/keep.js.map": 200, "/.well-known/x": 200,
		"/.env": 404, "/.env.production": 404, "/.git/config": 404, "/.git/HEAD": 404,
		"/img/.DS_Store": 404, "/app.js.map": 404, "/drafts/post.html": 404, "/.cairnignore": 404,
	} {
		if code, _ := s.fetch("demo.localhost", path); code != wantCode {
			t.Errorf("edge %s: %d, want %d", path, code, wantCode)
		}
	}

	// cairn pack leaves out the same paths: the same release.
	var packed struct {
		SHA256   string          `json:"sha256"`
		Excluded excludedSummary `json:"excluded"`
	}
	if err := json.Unmarshal([]byte(s.ok("pack", site, "-o", filepath.Join(t.TempDir(), "r.tar.zst"), "--json")), &packed); err != nil {
		t.Fatal(err)
	}
	if packed.SHA256 != out.ArtifactSHA256 || packed.Excluded.Paths != 8 {
		t.Errorf("pack: sha256 %s, %d left out; publish stored %s", packed.SHA256, packed.Excluded.Paths, out.ArtifactSHA256)
	}

	// The human summary names the count and the rules.
	human := s.ok("publish", site, "--deployment", "demo")
	if !strings.Contains(human, "8 paths left out (") || !strings.Contains(human, "*.map ×2 .cairnignore:2") ||
		!strings.Contains(human, ".git/ ×1 default") {
		t.Errorf("human summary:\n%s", human)
	}

	// --include-ignored publishes the dotfiles (and the ignored paths).
	if err := json.Unmarshal([]byte(s.ok("publish", site, "--deployment", "demo", "--include-ignored", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Excluded.Paths != 0 {
		t.Errorf("--include-ignored left out %d paths", out.Excluded.Paths)
	}
	for _, p := range []string{"/.env", "/.git/config", "/app.js.map", "/drafts/post.html"} {
		if code, _ := s.fetch("demo.localhost", p); code != 200 {
			t.Errorf("--include-ignored: edge %s: %d, want 200", p, code)
		}
	}
}

// TestFailedPublishChangesNothing: every failing publish exits non-zero and
// leaves no deployment and no version: an empty directory, a tree of only
// ignored files, a bad --entrypoint, a symlink leaving the tree, an upload
// over the server's limits (entries, bytes; to a new and to an existing
// deployment), and a domain that serves another deployment.
func TestFailedPublishChangesNothing(t *testing.T) {
	s := startReadme(t, "--max-files", "5", "--max-bytes", "64KiB")
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	s.fails("has no files to publish", "publish", empty, "--deployment", "fresh")

	dotfiles := filepath.Join(tmp, "dotfiles")
	writeFiles(t, dotfiles, map[string]string{".env": "S=1", ".git/config": "[core]"})
	s.fails("has no files to publish; 2 paths left out (.git/ ×1 default, .env ×1 default) (--include-ignored keeps them)",
		"publish", dotfiles, "--deployment", "fresh")

	site := filepath.Join(tmp, "site")
	writeFiles(t, site, map[string]string{"index.html": "<h1>one</h1>"})
	s.fails(`--entrypoint "main.html" is not a file`, "publish", site, "--deployment", "fresh", "--entrypoint", "main.html")

	escape := filepath.Join(tmp, "escape")
	writeFiles(t, escape, map[string]string{"index.html": "x"})
	if err := os.Symlink("../../etc/passwd", filepath.Join(escape, "passwd")); err != nil {
		t.Fatal(err)
	}
	s.fails("points outside the tree", "publish", escape, "--deployment", "fresh")

	big := filepath.Join(tmp, "big")
	writeFiles(t, big, map[string]string{"index.html": "x", "a": "a", "b": "b", "c": "c", "d": "d", "e": "e"})
	s.fails("more than 5 entries", "publish", big, "--deployment", "fresh")
	heavy := filepath.Join(tmp, "heavy")
	writeFiles(t, heavy, map[string]string{"index.html": "x", "blob.bin": strings.Repeat("h", 100<<10)})
	s.fails("more than 65536 bytes", "publish", heavy, "--deployment", "fresh")

	if got := s.deployments(); len(got) != 0 {
		t.Fatalf("failed publishes left deployments %v", got)
	}

	// A domain that serves another deployment: refused before the upload,
	// whether the deployment exists yet or not.
	s.ok("publish", site, "--deployment", "owner", "--domain", "www.example.com")
	s.fails("already serves another deployment", "publish", site, "--deployment", "fresh", "--domain", "www.example.com")
	writeFiles(t, site, map[string]string{"index.html": "<h1>two</h1>"})
	s.ok("publish", site, "--deployment", "other")
	s.fails("already serves another deployment", "publish", site, "--deployment", "other", "--domain", "WWW.example.com")
	s.fails("not a valid lower-case DNS name", "publish", site, "--deployment", "other", "--domain", "bad_host.example.com")
	// Over the limits to an existing deployment (the incremental publish).
	s.fails("more than 5 entries", "publish", big, "--deployment", "other")
	s.fails("more than 65536 bytes", "publish", heavy, "--deployment", "other")
	if got := strings.Join(s.deployments(), ","); got != "other,owner" {
		t.Fatalf("deployments = %s, want other,owner", got)
	}
	if n := s.versionCount("other"); n != 1 {
		t.Fatalf("other has %d versions after refused publishes, want 1", n)
	}
	if n := s.versionCount("owner"); n != 1 {
		t.Fatalf("owner has %d versions, want 1", n)
	}
	if code, body := s.fetch("other.localhost", "/"); code != 200 || body != "<h1>two</h1>" {
		t.Fatalf("other serves %d %q", code, body)
	}
	if code, body := s.fetch("www.example.com", "/"); code != 200 || body != "<h1>one</h1>" {
		t.Fatalf("www.example.com serves %d %q", code, body)
	}
}

// TestAbortedPublishLeavesNoDeployment: an upload cut off mid-stream (what
// Ctrl-C does to `cairn publish`) to a deployment that the publish would
// create leaves no deployment, and a complete one creates it with v1.
func TestAbortedPublishLeavesNoDeployment(t *testing.T) {
	s := startReadme(t)
	body := tarOf(t, map[string]string{"index.html": "<h1>x</h1>", "big.bin": strings.Repeat("z", 1<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.api+"/v1/deployments/cut/versions?create=true", pr)
	req.Header.Set("Authorization", "Bearer "+s.token)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	cancel()
	pw.CloseWithError(context.Canceled)
	<-done
	// The server notices the cut connection; watch it for a bounded time.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if got := s.deployments(); len(got) != 0 {
			t.Fatalf("an aborted upload left deployments %v", got)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	req, _ = http.NewRequest("POST", "http://"+s.api+"/v1/deployments/cut/versions?create=true", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("complete upload: %d", resp.StatusCode)
	}
	if got := strings.Join(s.deployments(), ","); got != "cut" || s.versionCount("cut") != 1 {
		t.Fatalf("deployments %s, versions of cut %d", got, s.versionCount("cut"))
	}
}

// TestRegistryPushNeverActivates: with the real binary, a tag push makes a
// version that is not active and leaves the active version as it was;
// re-tagging an image (crane tag app:v1 backup-of-v1) makes no version and
// records the tag; `cairn activate` activates; a deployment's
// activate_on_push tag (cairn deployment set --activate-on-push) opts in
// to activation by push; team/app:v1 creates
// no deployment team. It runs on both backends: SQLite and files, and
// PostgreSQL and S3 in the scale-out pass (startReadme).
func TestRegistryPushNeverActivates(t *testing.T) {
	s := startReadme(t)
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: s.token})
	push := func(img v1.Image, ref string) error {
		r, err := name.ParseReference(s.api+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return remote.Write(r, img, auth)
	}
	image := func() v1.Image {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	type version struct {
		VersionNumber int64    `json:"version_number"`
		Status        string   `json:"status"`
		Tags          []string `json:"tags"`
	}
	versions := func() map[int64]version {
		var vs []version
		if err := json.Unmarshal([]byte(s.ok("versions", "app", "--json")), &vs); err != nil {
			t.Fatal(err)
		}
		out := map[int64]version{}
		for _, v := range vs {
			out[v.VersionNumber] = v
		}
		return out
	}
	active := func() int64 {
		for n, v := range versions() {
			if v.Status == "active" {
				return n
			}
		}
		return 0
	}
	img1, img2, img3 := image(), image(), image()
	if err := push(img1, "app:v1"); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 0 {
		t.Fatalf("the first push activated v%d", n)
	}
	s.ok("activate", "app", "1")
	if err := push(img2, "app:v2"); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 1 {
		t.Fatalf("after a push of app:v2 the active version is v%d, want v1", n)
	}
	if err := push(img1, "app:backup-of-v1"); err != nil {
		t.Fatal(err)
	}
	vs := versions()
	if len(vs) != 2 || fmt.Sprint(vs[1].Tags) != "[backup-of-v1 v1]" || fmt.Sprint(vs[2].Tags) != "[v2]" || active() != 1 {
		t.Fatalf("after re-tagging: %+v", vs)
	}

	// activate_on_push, set with the CLI: a push of prod activates the
	// image it names; turned off, a push of prod activates nothing.
	var dep struct {
		ActivateOnPush string `json:"activate_on_push"`
	}
	if err := json.Unmarshal([]byte(s.ok("deployment", "set", "app", "--activate-on-push", "prod", "--json")), &dep); err != nil ||
		dep.ActivateOnPush != "prod" {
		t.Fatalf("deployment set --activate-on-push prod --json: %+v %v", dep, err)
	}
	if err := push(img2, "app:prod"); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 2 {
		t.Fatalf("app:prod of v2's image: active v%d, want v2", n)
	}
	if err := push(img3, "app:v3"); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 2 || len(versions()) != 3 {
		t.Fatalf("app:v3: active v%d, %d versions", n, len(versions()))
	}
	if out := s.ok("deployment", "set", "app", "--activate-on-push", ""); out != "app: a registry push never activates (cairn activate does)\n" {
		t.Fatalf("deployment set --activate-on-push '': %q", out)
	}
	if err := push(img3, "app:prod"); err != nil {
		t.Fatal(err)
	}
	if n := active(); n != 2 || fmt.Sprint(versions()[3].Tags) != "[prod v3]" {
		t.Fatalf("app:prod of v3's image with activate_on_push off: active v%d, v3 %+v", n, versions()[3])
	}

	// A nested repository does not create its first component's deployment.
	err := push(image(), "team/app:v1")
	if err == nil || !strings.Contains(err.Error(), "NAME_INVALID") {
		t.Fatalf("push of team/app:v1: %v", err)
	}
	if got := strings.Join(s.deployments(), ","); got != "app" {
		t.Fatalf("deployments %s, want app", got)
	}
}
