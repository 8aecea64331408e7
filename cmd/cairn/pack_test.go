package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPack(t *testing.T) {
	dir, out := siteDir(t), filepath.Join(t.TempDir(), "site.tar.zst")
	stdout, stderr, code := cli(t, nil, "pack", dir, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if !strings.HasPrefix(stdout, "sha256       "+hex.EncodeToString(sum[:])+"\n") ||
		!strings.Contains(stdout, "files        2\n") || !strings.Contains(stdout, "entrypoint   index.html\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}

	stdout, _, code = cli(t, nil, "pack", "--json", dir, "-o", out, "--entrypoint", "css/site.css")
	var got packOutput
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %q", code, err, stdout)
	}
	if got.SHA256 != hex.EncodeToString(sum[:]) || got.SizeBytes != int64(len(b)) || len(got.TreeSHA256) != 64 ||
		got.ArtifactManifest.Files != 2 || got.ArtifactManifest.TotalBytes != 17 || got.ArtifactManifest.Entrypoint != "css/site.css" {
		t.Errorf("json %+v", got)
	}
}

func TestPackFailureLeavesNothing(t *testing.T) {
	dir := siteDir(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.tar.zst")
	_, stderr, code := cli(t, nil, "pack", dir, "-o", out)
	if code != 1 || !strings.HasPrefix(stderr, "cairn: packing "+dir+": ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
