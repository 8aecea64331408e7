package e2e

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionShowRuntime: `cairn version show` of a rootfs version prints
// its runtime (cmd, env, workdir, user, port, health check), in human and
// --json output, against a golden file (-update rewrites it).
func TestVersionShowRuntime(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass")
		return
	}
	e := start(t, withPublicURL("https://sites.example.test"))
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "rootfs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	body := "#!/bin/sh\nexec httpd -f -p $PORT\n"
	for _, h := range []*tar.Header{
		{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "srv/app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var golden strings.Builder
	run := func(args ...string) {
		t.Helper()
		out, stderr, code := e.runCLI(dir, args...)
		if code != 0 {
			t.Fatalf("cairn %s: exit %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, out, stderr)
		}
		golden.WriteString("$ cairn " + strings.Join(args, " ") + "\n" + normalise(out+stderr))
	}
	run("publish", "rootfs.tar", "--deployment", "app", "--kind", "rootfs",
		"--cmd", `["/srv/app","--name","a b"]`, "--env", "LANG=C.UTF-8", "--env", "A=1",
		"--workdir", "/srv", "--user", "1000:1000", "--port", "9000",
		"--health-path", "/healthz", "--health-interval", "5s", "--health-timeout", "1s")
	run("publish", "rootfs.tar", "--deployment", "app", "--kind", "rootfs", "--cmd", "/srv/app", "--no-activate")
	run("version", "show", "app", "1")
	run("version", "show", "app", "2")
	run("version", "show", "app", "1", "--json")

	path := filepath.Join("testdata", "version_show_rootfs.golden")
	if *update {
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
}
