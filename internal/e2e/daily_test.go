package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/server"
)

// runCLI runs the real cairn binary in dir against env's API with its
// token and returns stdout, stderr and the exit code.
func (e *env) runCLI(dir string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	c := exec.Command(cairnBinary(e.t), append(args, "--api", e.api, "--token", e.token)...)
	c.Dir = dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// siteDir writes tree under a new directory and returns it.
func siteDir(t *testing.T, tree map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range tree {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReadyStatus: a version published with --no-activate is ready (it
// showed as archived); once active and replaced it is archived.
func TestReadyStatus(t *testing.T) {
	e := start(t)
	dir := siteDir(t, site("one"))
	if _, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "st"); code != 0 {
		t.Fatalf("publish: %d %s", code, stderr)
	}
	if _, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "st", "--no-activate"); code != 0 {
		t.Fatalf("publish --no-activate: %d %s", code, stderr)
	}
	out, _, _ := e.runCLI(dir, "versions", "st")
	if !regexpLine(out, "v2", "ready") || !regexpLine(out, "v1", "active") {
		t.Fatalf("versions:\n%s", out)
	}
	if _, stderr, code := e.runCLI(dir, "activate", "st", "2"); code != 0 {
		t.Fatal(stderr)
	}
	out, _, _ = e.runCLI(dir, "versions", "st")
	if !regexpLine(out, "v2", "active") || !regexpLine(out, "v1", "archived") {
		t.Fatalf("versions after activate:\n%s", out)
	}
}

// regexpLine reports whether some line of out starts with first and has
// the field want.
func regexpLine(out, first, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == first && f[1] == want {
			return true
		}
	}
	return false
}

// TestWrongKind: publishing a directory to an oci deployment says that the
// deployment is of kind oci (it answered "invalid JSON body: syntax error
// at byte 1"), through the API and the CLI, and creates no version.
func TestWrongKind(t *testing.T) {
	e := start(t)
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "img", "kind": "oci"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var p map[string]any
	code, _ := e.do("POST", "/v1/deployments/img/versions", bytes.NewReader(tarOf(t, site("x"))), &p)
	if code != 415 || !strings.HasSuffix(p["type"].(string), "/wrong-kind") || !strings.Contains(p["detail"].(string), "of kind oci") {
		t.Fatalf("tar to an oci deployment: %d %v", code, p)
	}
	_, stderr, exit := e.runCLI(siteDir(t, site("x")), "publish", ".", "--deployment", "img")
	if exit == 0 || !strings.Contains(stderr, "is of kind oci") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("cli: exit %d, %q", exit, stderr)
	}
	var vs map[string]any
	e.do("GET", "/v1/deployments/img/versions", nil, &vs)
	if n := len(vs["versions"].([]any)); n != 0 {
		t.Errorf("%d versions after refused publishes", n)
	}
	// A JSON body still makes a version from an image (TestOCI covers the
	// success); a JSON body naming no image is a bad request, not wrong-kind.
	code, _ = e.do("POST", "/v1/deployments/img/versions", strings.NewReader(` {"image": ""}`), &p)
	if code != 400 {
		t.Errorf("empty image: %d %v", code, p)
	}
}

// TestServerMadeURLs: records carry url and preview_url made by the server
// from --public-url (or from its base domain and edge port: https and the
// TLS port when the edge serves TLS), and the CLI prints those, not URLs of
// its own making.
func TestServerMadeURLs(t *testing.T) {
	tlsAddr := freeAddr(t)
	for _, c := range []struct {
		name   string
		mod    func(*server.Config)
		url    func(e *env) string
		prefix string
	}{
		{"public url", func(c *server.Config) { c.PublicURL = "https://sites.example.test" },
			func(*env) string { return "https://urls.sites.example.test/" }, "https://urls--v"},
		{"derived", func(c *server.Config) { c.BaseDomain = "apps.test" },
			func(e *env) string { return "http://urls.apps.test:" + e.edge[strings.LastIndex(e.edge, ":")+1:] + "/" }, "http://urls--v"},
		{"derived tls", func(c *server.Config) {
			c.BaseDomain, c.EdgeTLSAddr, c.ACMECA = "apps.test", tlsAddr, "https://127.0.0.1:1/dir" // no CA is asked
		}, func(*env) string {
			return "https://urls.apps.test:" + tlsAddr[strings.LastIndex(tlsAddr, ":")+1:] + "/"
		}, "https://urls--v"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, c.mod)
			dir := siteDir(t, site("one"))
			out, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "urls")
			want := c.url(e)
			if code != 0 || !strings.Contains(out, "→ "+want+"\n") || !strings.Contains(out, "preview: "+c.prefix+"1.") {
				t.Fatalf("publish: exit %d, stdout %q, stderr %q, want %s", code, out, stderr, want)
			}
			out, _, _ = e.runCLI(dir, "publish", ".", "--deployment", "urls", "--no-activate", "--json")
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			if _, ok := v["url"]; ok || !strings.HasPrefix(v["preview_url"].(string), c.prefix+"2.") {
				t.Errorf("a ready version: url %v, preview_url %v", v["url"], v["preview_url"])
			}
			var d map[string]any
			e.do("GET", "/v1/deployments/urls", nil, &d)
			if d["url"] != want {
				t.Errorf("deployment url %v, want %s", d["url"], want)
			}
			var vs struct{ Versions []map[string]any }
			e.do("GET", "/v1/deployments/urls/versions", nil, &vs)
			if got := vs.Versions; len(got) != 2 || got[1]["url"] != want || got[0]["url"] != nil {
				t.Errorf("versions %v", got)
			}
			out, _, _ = e.runCLI(dir, "activate", "urls", "2")
			if !strings.Contains(out, "→ "+want) {
				t.Errorf("activate: %q", out)
			}
		})
	}
}

// TestCompletion: shell completion offers the deployment names the API
// knows, for the commands that take one.
func TestCompletion(t *testing.T) {
	e := start(t)
	e.publish("alpha", site("a"))
	e.publish("beta", site("b"))
	dir := t.TempDir()
	for _, args := range [][]string{
		{"__complete", "versions", ""},
		{"__complete", "activate", ""},
		{"__complete", "version", "show", ""},
		{"__complete", "deployment", "delete", ""},
		{"__complete", "domain", "add", "www.x.test", "--deployment", ""},
		{"__complete", "events", "--deployment", ""},
	} {
		// The word being completed is last: API and token come from the
		// environment.
		c := exec.Command(cairnBinary(t), args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "CAIRN_API="+e.api, "CAIRN_TOKEN="+e.token)
		out, err := c.Output()
		if err != nil || !strings.Contains(string(out), "alpha\nbeta\n") {
			t.Errorf("%v: %v, %q", args, err, out)
		}
	}
}

// TestNoIndexWarning: a tree without its entrypoint (monaco-editor's npm
// tree has no index.html) publishes, warns on the CLI, and the version
// record keeps the warning; a tree with one has none.
func TestNoIndexWarning(t *testing.T) {
	e := start(t)
	dir := siteDir(t, map[string]string{"min/vs/loader.js": "x", "README.md": "y"})
	out, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "noindex")
	if code != 0 || !strings.Contains(stderr, "cairn: warning: no index.html in the tree: / answers 404") {
		t.Fatalf("publish: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, _, _ = e.runCLI(dir, "version", "show", "noindex", "1")
	if !strings.Contains(out, "warning:     no index.html") {
		t.Errorf("version show: %q", out)
	}
	var v map[string]any
	e.do("GET", "/v1/deployments/noindex/versions/1", nil, &v)
	if ws, _ := v["warnings"].([]any); len(ws) != 1 {
		t.Errorf("record warnings %v", v["warnings"])
	}
	_, stderr, _ = e.runCLI(siteDir(t, site("ok")), "publish", ".", "--deployment", "withindex")
	if strings.Contains(stderr, "warning") {
		t.Errorf("a site with index.html warned: %q", stderr)
	}
}

// TestPublishPackArtifact: `cairn pack` then `cairn publish FILE.tar.zst`
// publishes that very release (same sha256, checked by the server), and
// the edge serves it; a file that is not a release is refused with one
// line and nothing published; a release of another format (here: a
// valid tar.zst that repacks differently) is refused by the server (422).
func TestPublishPackArtifact(t *testing.T) {
	e := start(t)
	dir := siteDir(t, site("packed"))
	art := filepath.Join(t.TempDir(), "site.tar.zst")
	out, stderr, code := e.runCLI(dir, "pack", ".", "-o", art, "--json")
	var packed struct {
		SHA256 string `json:"sha256"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &packed) != nil || packed.SHA256 == "" {
		t.Fatalf("pack: %d %q %q", code, out, stderr)
	}
	out, stderr, code = e.runCLI(dir, "publish", art, "--deployment", "fromfile", "--json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["artifact_sha256"] != packed.SHA256 {
		t.Fatalf("publish FILE: %d %q %q (pack made %s)", code, out, stderr, packed.SHA256)
	}
	if resp, body := e.get("fromfile.localhost", "/"); resp.StatusCode != 200 || string(body) != site("packed")["index.html"] {
		t.Errorf("edge: %d %q", resp.StatusCode, body)
	}

	junk := filepath.Join(t.TempDir(), "junk.tar.zst")
	os.WriteFile(junk, []byte("not a release"), 0o644)
	_, stderr, code = e.runCLI(dir, "publish", junk, "--deployment", "fromfile")
	if code != 1 || !strings.Contains(stderr, "is neither a directory nor a release made by cairn pack") {
		t.Errorf("junk: %d %q", code, stderr)
	}
	// The server refuses an upload that does not repack to the sha256 it
	// was told (what an artifact of another format version would do).
	var p map[string]any
	code, _ = e.do("POST", "/v1/deployments/fromfile/versions?sha256="+strings.Repeat("ab", 32),
		bytes.NewReader(tarOf(t, site("other"))), &p)
	if code != 422 || !strings.HasSuffix(p["type"].(string), "/release-mismatch") {
		t.Errorf("mismatch: %d %v", code, p)
	}
	var vs struct{ Versions []map[string]any }
	e.do("GET", "/v1/deployments/fromfile/versions", nil, &vs)
	if len(vs.Versions) != 1 {
		t.Errorf("%d versions after the refused uploads, want 1", len(vs.Versions))
	}
}
