package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/release/unpack"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// debianTree is the Debian nginx tree the runtime's tests share.
func debianTree(t *testing.T) string { return runtimetest.DebianTree(t) }

// listing describes every path below dir as find -printf sees it (type,
// mode with setuid/setgid/sticky, owner, link count, size but for
// directories, link target), with the device numbers of devices and the
// sha256 of each regular file.
func listing(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("find", dir, "-mindepth", "1", "-printf", `%y %#m %U %G %n %s %P\0%l\n`).Output()
	if err != nil {
		t.Fatalf("find %s: %v", dir, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	var norm []string
	for _, l := range lines {
		f := strings.SplitN(l, " ", 7)
		name := strings.SplitN(f[6], "\x00", 2)[0]
		abs := filepath.Join(dir, name)
		switch f[0] {
		case "d":
			f[5] = "-" // a directory's size depends on the filesystem and its history
		case "c", "b":
			var st syscall.Stat_t
			if err := syscall.Lstat(abs, &st); err != nil {
				t.Fatal(err)
			}
			f[5] = fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case "f":
			c, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			f[5] += fmt.Sprintf(" %x", sha256.Sum256(c))
		}
		norm = append(norm, strings.Join(f, " "))
	}
	sort.Strings(norm) // find lists in directory order, which differs between filesystems
	return strings.Join(norm, "\n") + "\n"
}

func diffListings(t *testing.T, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
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
			t.Fatalf("%s differs from the source tree at line %d:\nsource: %q\n%s: %q", what, i, a, what, b)
		}
	}
}

// TestRootfsDebian publishes a real Debian root filesystem, as a directory
// and as a tar stream, and checks that both give the same release, that
// tar --zstd -xpf and the safe unpacker both reproduce the tree, and that
// nginx -t works in a chroot of the unpacked tree.
func TestRootfsDebian(t *testing.T) {
	tree := debianTree(t)
	src := listing(t, tree)
	e := start(t)
	bin := cairnBinary(t)
	work := t.TempDir()
	cli := func(args ...string) []byte {
		t.Helper()
		c := exec.Command(bin, append(args, "--api", e.api)...)
		c.Env = append(os.Environ(), "CAIRN_TOKEN="+e.token)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	type version struct {
		ArtifactSHA256   string `json:"artifact_sha256"`
		ArtifactManifest struct {
			Files      int64  `json:"files"`
			Entrypoint string `json:"entrypoint"`
		} `json:"artifact_manifest"`
		Runtime map[string]any `json:"runtime"`
	}
	var v1, v2 version
	json.Unmarshal(cli("--json", "publish", tree, "--deployment", "deb", "--kind", "rootfs",
		"--cmd", `["nginx","-g","daemon off;"]`, "--env", "LANG=C.UTF-8", "--port", "80", "--health-path", "/"), &v1)
	if v1.ArtifactSHA256 == "" || v1.ArtifactManifest.Entrypoint != "nginx -g daemon off;" || v1.ArtifactManifest.Files < 5000 {
		t.Fatalf("publish of the directory: %+v", v1)
	}
	rt, _ := json.Marshal(v1.Runtime)
	if want := `{"cmd":["nginx","-g","daemon off;"],"env":{"LANG":"C.UTF-8"},"health_check":{"interval":"10s","path":"/","timeout":"2s"},"port":80}`; string(rt) != want {
		t.Errorf("runtime %s, want %s", rt, want)
	}
	// The same tree as a tar stream (as tar of a debootstrap dir gives it,
	// gzip-compressed) is the same release.
	tgz := filepath.Join(work, "rootfs.tar.gz")
	if out, err := exec.Command("tar", "-C", tree, "--numeric-owner", "--xattrs", "-czf", tgz, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	json.Unmarshal(cli("--json", "publish", tgz, "--deployment", "deb2", "--kind", "rootfs"), &v2)
	if v2.ArtifactSHA256 != v1.ArtifactSHA256 {
		t.Fatalf("the directory gave %s, its tar %s", v1.ArtifactSHA256, v2.ArtifactSHA256)
	}
	if v2.Runtime["port"] != float64(8080) {
		t.Errorf("default port: %v", v2.Runtime)
	}

	art := filepath.Join(work, "rootfs.tar.zst")
	req, _ := http.NewRequest("GET", e.api+"/v1/releases/"+v1.ArtifactSHA256+"/artifact", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("artifact: %v %v", err, resp)
	}
	f, _ := os.Create(art)
	io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()

	// tar --zstd -xpf as root restores every path.
	x := filepath.Join(work, "tar-x")
	os.Mkdir(x, 0o755)
	if out, err := exec.Command("tar", "--zstd", "-xpf", art, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	diffListings(t, "tar --zstd -xpf", src, listing(t, x))
	os.RemoveAll(x)

	// The safe unpacker too, and its digest matches.
	u := filepath.Join(work, "unpacked")
	os.Mkdir(u, 0o755)
	ra, _ := os.Open(art)
	defer ra.Close()
	fi, _ := ra.Stat()
	toc, err := unpack.Unpack(context.Background(), ra, fi.Size(), u, unpack.Options{AllowDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	diffListings(t, "the unpacker's tree", src, listing(t, u))
	if got, err := release.RootfsDirDigest(context.Background(), tree, 2); err != nil || got != toc.TreeSHA256 {
		t.Fatalf("source tree digest %s (%v), release %s", got, err, toc.TreeSHA256)
	}
	if out, err := exec.Command("chroot", u, "/usr/sbin/nginx", "-t").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t in a chroot of the unpacked tree: %v\n%s", err, out)
	}
}
