package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/client"
)

// TestPublishDigestCache: through the real binary and server, a re-publish
// of an unchanged tree reads no file (its digests come from the CLI's
// cache) and stores no new release; a file rewritten with its size and
// mtime kept is read again (its ctime moved) and published; every release
// is the one `cairn pack` makes of the tree.
func TestPublishDigestCache(t *testing.T) {
	e := start(t)
	dir := siteDir(t, site("one"))
	cache := t.TempDir()
	publish := func() (sha string, st client.IncrementalStats) {
		t.Helper()
		c := exec.Command(cairnBinary(t), "publish", ".", "--deployment", "cached", "--json", "--api", e.api, "--token", e.token)
		c.Dir, c.Env = dir, append(os.Environ(), "CAIRN_CACHE_DIR="+cache)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("cairn publish: %v\n%s", err, errb.String())
		}
		var v struct {
			ArtifactSHA256 string                   `json:"artifact_sha256"`
			Sent           *client.IncrementalStats `json:"sent"`
		}
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if v.Sent != nil {
			st = *v.Sent
		}
		return v.ArtifactSHA256, st
	}
	packed := func() string {
		t.Helper()
		out, err := exec.Command(cairnBinary(t), "pack", dir, "-o", filepath.Join(t.TempDir(), "r.tar.zst"), "--json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			SHA256 string `json:"sha256"`
		}
		json.Unmarshal(out, &r)
		return r.SHA256
	}
	first, _ := publish() // creates the deployment: a tar upload
	// Files written less than RacyWindow before they are hashed are not
	// cached (a later change within the clock's granularity would hide).
	time.Sleep(client.RacyWindow + 100*time.Millisecond)
	sha, st := publish()
	if sha != first || st.Hashed != 3 || st.New != 0 {
		t.Fatalf("first incremental publish: %s (want %s), %+v", sha, first, st)
	}
	sha, st = publish()
	if sha != first || st.Hashed != 0 || st.HashedBytes != 0 || st.Files != 3 {
		t.Fatalf("unchanged re-publish: %s (want %s), %+v; want no file read", sha, first, st)
	}

	p := filepath.Join(dir, "app.js")
	fi, _ := os.Stat(p)
	b, _ := os.ReadFile(p)
	changed := []byte(strings.ToUpper(string(b)))
	if err := os.WriteFile(p, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime()) // size and mtime as they were
	sha, st = publish()
	if sha == first || sha != packed() || st.Hashed != 1 || st.New != 1 {
		t.Fatalf("a file changed with its size and mtime kept: release %s (cairn pack: %s), %+v", sha, packed(), st)
	}
}
