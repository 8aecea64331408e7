package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestRootfsSameSHAAcrossRuns publishes the Debian tree to two separate
// `cairn server` processes, each on its own data dir, one after the other:
// the two releases have the same sha256, so a rootfs
// release depends on the tree only, not on the run, the server or its store.
func TestRootfsSameSHAAcrossRuns(t *testing.T) {
	tree := debianTree(t)
	bin := cairnBinary(t)
	type version struct {
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	var got []version
	for run := range 2 {
		p := startProc(t, t.TempDir())
		c := exec.Command(bin, "--json", "publish", tree, "--deployment", "deb", "--kind", "rootfs", "--api", p.api)
		c.Env = append(os.Environ(), "CAIRN_TOKEN="+p.token)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("run %d: cairn publish: %v\n%s", run+1, err, stderr.Bytes())
		}
		var v version
		if err := json.Unmarshal(out, &v); err != nil || v.ArtifactSHA256 == "" {
			t.Fatalf("run %d: publish output %s: %v", run+1, out, err)
		}
		got = append(got, v)
		p.stop()
	}
	if got[0] != got[1] {
		t.Fatalf("two runs of the same tree gave different releases:\n%+v\n%+v", got[0], got[1])
	}
}
