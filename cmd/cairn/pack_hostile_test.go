package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackHostileTrees: cairn pack refuses a tree whose link escapes only
// through another link, and names the format refuses, with one readable
// line, exit 1 and no file written.
func TestPackHostileTrees(t *testing.T) {
	cases := map[string]func(dir string) error{
		"link escaping through a link": func(dir string) error {
			os.Mkdir(filepath.Join(dir, "a"), 0o755)
			if err := os.Symlink("..", filepath.Join(dir, "a", "up")); err != nil {
				return err
			}
			return os.Symlink("up/../..", filepath.Join(dir, "a", "esc"))
		},
		"name with a newline": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "a\nb.html"), nil, 0o644)
		},
		"name not UTF-8": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "caf\xe9.html"), nil, 0o644)
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := siteDir(t)
			if err := mk(dir); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "r.tar.zst")
			_, stderr, code := cli(t, nil, "pack", dir, "-o", out)
			if code != 1 || !strings.HasPrefix(stderr, "cairn: packing "+dir+": invalid release input: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}
