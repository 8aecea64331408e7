package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
