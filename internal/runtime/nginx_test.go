package runtime_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestDebianNginx: nginx from the Debian tree the rootfs tests build,
// device nodes and all, answers HTTP through its namespace, on a root
// verified against the TOC; no device node is made in the cache.
// The tree's /etc/nginx/sites-enabled/default is an absolute symlink: it
// resolves inside the instance.
func TestDebianNginx(t *testing.T) {
	h := newHost(t)
	tree := runtimetest.DebianTree(t)
	res, b := runtimetest.Pack(t, tree) // its /dev nodes included: the cache leaves them out
	h.art.Add(res.SHA256, b)
	o := h.start(hostapi.Desired{
		ID: "nginx-1", Release: res.SHA256, TreeDigest: res.TOC.TreeSHA256,
		Cmd: []string{"/usr/sbin/nginx", "-g", "daemon off;"}, Port: 80,
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 256 << 20, Pids: 128},
	})
	if o.TreeDigest != res.TOC.TreeSHA256 {
		t.Fatalf("tree digest %s, TOC %s", o.TreeDigest, res.TOC.TreeSHA256)
	}
	devs, _ := exec.Command("find", filepath.Join(h.dir, "cache", "trees"), "-type", "c", "-o", "-type", "b").Output()
	if len(devs) != 0 {
		t.Errorf("device nodes in the cache:\n%s", devs)
	}
	body := runtimetest.WaitHTTP(t, "http://"+o.Addr+"/", 10*time.Second)
	if !strings.Contains(body, "Welcome to nginx") {
		t.Fatalf("body %.200q", body)
	}
}
