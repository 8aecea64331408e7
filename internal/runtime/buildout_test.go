package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/internal/release"
)

// TestCheckOutput: what a build's output is refused for, said with the
// build's paths (relative to /src) and none of the host's.
func TestCheckOutput(t *testing.T) {
	lim := release.Limits{MaxFiles: 5, MaxBytes: 1 << 20}
	for _, c := range []struct {
		name, output string
		make         func(dir string) error // dir is the output directory
		want         string
	}{
		{"good", "dist", func(d string) error {
			os.Mkdir(filepath.Join(d, "a"), 0o755)
			os.Symlink("../b", filepath.Join(d, "a", "l"))
			return os.WriteFile(filepath.Join(d, "b"), []byte("b"), 0o644)
		}, ""},
		{"absolute link", "dist", func(d string) error { return os.Symlink("/etc/passwd", filepath.Join(d, "x")) },
			"output dist/x: a link that leaves the output"},
		{"relative link out", "site/dist", func(d string) error { return os.Symlink("../../build.sh", filepath.Join(d, "x")) },
			"output site/dist/x: a link that leaves the output"},
		{"a chain out", "dist", func(d string) error {
			os.Mkdir(filepath.Join(d, "a"), 0o755)
			os.Symlink("..", filepath.Join(d, "a", "up"))
			return os.Symlink("a/up/..", filepath.Join(d, "y"))
		}, "output dist/y: a link that leaves the output"},
		{"output /src", ".", func(d string) error { return os.Symlink("/", filepath.Join(d, "root")) },
			"output root: a link that leaves the output"},
		{"fifo", "dist", func(d string) error { return syscall.Mkfifo(filepath.Join(d, "p"), 0o644) },
			"output dist/p: a device, fifo or socket; only files, directories and links are packed"},
		{"files", "dist", func(d string) error {
			for _, n := range []string{"1", "2", "3", "4", "5", "6"} {
				os.WriteFile(filepath.Join(d, n), nil, 0o644)
			}
			return nil
		}, "output dist: more than 5 files and directories"},
		{"files in /src", ".", func(d string) error {
			for _, n := range []string{"1", "2", "3", "4", "5", "6"} {
				os.WriteFile(filepath.Join(d, n), nil, 0o644)
			}
			return nil
		}, "output /src: more than 5 files and directories"},
		{"bytes", "dist", func(d string) error { return os.WriteFile(filepath.Join(d, "big"), make([]byte, 1<<20+1), 0o644) },
			"output dist: more than 1 MiB"},
		{"name", "dist", func(d string) error { return os.WriteFile(filepath.Join(d, "a\\b"), nil, 0o644) },
			`output dist/a\b: a name the release format refuses (not UTF-8, a control character, a backslash or a component over 255 bytes)`},
		{"control name", "dist", func(d string) error { return os.WriteFile(filepath.Join(d, "a\nb"), nil, 0o644) },
			`output "dist/a\nb": a name the release format refuses (not UTF-8, a control character, a backslash or a component over 255 bytes)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			merged := t.TempDir()
			dir := filepath.Join(merged, "src", c.output)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := c.make(dir); err != nil {
				t.Fatal(err)
			}
			out, msg := outputDir(merged, c.output)
			if msg != "" || out != filepath.Clean(dir) {
				t.Fatalf("outputDir: %q, %q", out, msg)
			}
			if got := checkOutput(out, c.output, lim); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestOutputDirErrno: an output whose Lstat fails for another reason
// than its absence is refused with the errno's words, not the host's
// path.
func TestOutputDirErrno(t *testing.T) {
	merged := t.TempDir()
	os.MkdirAll(filepath.Join(merged, "src"), 0o755)
	long := strings.Repeat("a", 300)
	_, msg := outputDir(merged, long)
	if want := "output " + long + ": file name too long"; msg != want {
		t.Fatalf("got %q, want %q", msg, want)
	}
	if strings.Contains(msg, merged) {
		t.Fatalf("%q holds the host's path", msg)
	}
}

func TestSizeWords(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64 MiB", 10 << 30: "10 GiB", 1000: "1000 bytes", 3 << 10: "3 KiB", 0: "0 bytes"} {
		if got := sizeWords(n); got != want {
			t.Errorf("sizeWords(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestDiskUsage: a file counts its size or its blocks, the larger; a
// file of two links once; the count stops past stopAt.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "a2"))
	f, _ := os.Create(filepath.Join(dir, "sparse"))
	f.Truncate(8 << 20)
	f.Close()
	got := diskUsage(dir, 1<<40)
	if got < 9<<20 || got > 9<<20+64<<10 {
		t.Fatalf("diskUsage = %d, want 9 MiB and a few blocks", got)
	}
	if got := diskUsage(dir, 100); got <= 100 || got > 9<<20+64<<10 {
		t.Fatalf("diskUsage(stopAt 100) = %d", got)
	}
}
