package release

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func link(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target}
}

func dirEntry(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeDir} }

// TestExtractRejectsNamesAndLinks: uploads whose names or links the
// format refuses answer ErrInvalid (a 400), never a local error (a 500),
// and nothing is written outside the tree.
func TestExtractRejectsNamesAndLinks(t *testing.T) {
	long := strings.Repeat("n", 300)
	cases := map[string][]byte{
		"chain through up":                  mkTar(t, link("a/up", ".."), link("a/esc", "up/../..")),
		"chain through up, escape first":    mkTar(t, link("a/esc", "up/../.."), link("a/up", "..")),
		"link through link":                 mkTar(t, link("x", "y/../.."), link("y", "d"), dirEntry("d/")),
		"dir link then dotdot":              mkTar(t, dirEntry("e/f/"), link("d/l", "../e/f"), link("d/n", "l/../../..")),
		"escape past 40 links":              mkTar(t, chain(50, "../..")...),
		"absolute":                          mkTar(t, link("a", "/etc")),
		"not UTF-8":                         mkTar(t, reg("caf\xe9.html", "x")),
		"not UTF-8 target":                  mkTar(t, reg("a", "x"), link("l", "\xff")),
		"newline":                           mkTar(t, reg("a\nb", "x")),
		"control":                           mkTar(t, reg("a\x1bb", "x")),
		"DEL":                               mkTar(t, reg("a\x7f", "x")),
		"backslash":                         mkTar(t, reg(`a\b`, "x")),
		"300-byte component":                mkTar(t, reg(long+"/x", "x")),
		"300-byte file name":                mkTar(t, reg(long, "x")),
		"dir then file of the same name":    mkTar(t, dirEntry("x/y/"), reg("x", "x")),
		"dir then link of the same name":    mkTar(t, dirEntry("x/y/"), link("x", "y")),
		"file then an entry under it":       mkTar(t, reg("x", "x"), reg("x/y", "y")),
		"link then an entry under it":       mkTar(t, dirEntry("d/"), link("x", "d"), reg("x/y", "y")),
		"implied dir then file of its name": mkTar(t, reg("x/y", "y"), reg("x", "x")),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "p", "tree")
			os.MkdirAll(dir, 0o755)
			err := Extract(context.Background(), bytes.NewReader(body), dir, Limits{})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if ents, _ := os.ReadDir(base); len(ents) != 1 {
				t.Fatalf("wrote outside the tree: %v", ents)
			}
		})
	}
}

// chain is n links c00 -> c01 -> … whose last points at end.
func chain(n int, end string) []tarEntry {
	var es []tarEntry
	for i := range n {
		target := fmt.Sprintf("c%02d", i+1)
		if i == n-1 {
			target = end
		}
		es = append(es, link(fmt.Sprintf("c%02d", i), target))
	}
	return es
}

// TestExtractCountsImpliedDirs: directories that deep paths imply count
// against MaxFiles, as they are entries of the release: 10 files 50
// levels deep are 510 entries, not 10.
func TestExtractCountsImpliedDirs(t *testing.T) {
	var es []tarEntry
	for i := range 10 {
		es = append(es, reg(fmt.Sprintf("%d/", i)+strings.Repeat("d/", 49)+"f", "x"))
	}
	body := mkTar(t, es...)
	if err := Extract(context.Background(), bytes.NewReader(body), t.TempDir(), Limits{MaxFiles: 509}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("510 entries under a limit of 509: %v", err)
	}
	if err := Extract(context.Background(), bytes.NewReader(body), t.TempDir(), Limits{MaxFiles: 510}); err != nil {
		t.Fatalf("510 entries at a limit of 510: %v", err)
	}
}

// TestExtractAcceptsLinks: links that stay inside by every route pass,
// and so do loops and chains longer than the kernel follows (they reach
// nothing, or stay inside).
func TestExtractAcceptsLinks(t *testing.T) {
	body := mkTar(t, append(chain(50, "index.html"), reg("index.html", "hi"), link("a/up", ".."), link("a/home", "up/index.html"),
		dirEntry("e/f/"), link("d/l", "../e/f"), link("d/m", "l/../.."), link("dangling", "nope/x"),
		link("loop", "loop"), link("p", "q"), link("q", "p"),
		reg("ünïcode ok.html", "u"), dirEntry("x/"), reg("x/y", "y"))...)
	dir := t.TempDir()
	if err := Extract(context.Background(), bytes.NewReader(body), dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "home")); err != nil || string(b) != "hi" {
		t.Fatalf("a/home: %q %v", b, err)
	}
}

// TestPackRejectsDiskEscape: cairn pack of a directory whose links escape
// only through other links is refused, like an upload.
func TestPackRejectsDiskEscape(t *testing.T) {
	for name, links := range map[string][][2]string{
		"chain":            {{"a/up", ".."}, {"a/esc", "up/../.."}},
		"loop then escape": {{"x", "y"}, {"y", "x"}, {"z", "../z"}},
		"via a dir":        {{"d/l", "../e/f"}, {"d/n", "l/../../.."}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "a"), 0o755)
			os.MkdirAll(filepath.Join(dir, "d"), 0o755)
			os.MkdirAll(filepath.Join(dir, "e", "f"), 0o755)
			for _, l := range links {
				if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	for _, bad := range []string{"caf\xe9", "a\nb", `a\b`} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, bad), nil, 0o644)
		if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: got %v, want ErrInvalid", bad, err)
		}
	}
}

// TestPackHeaderOnlyTrees: trees of entries without content (empty files,
// long names, deep directories, symlinks) at the file limit, whose headers
// alone weigh more than the packer's in-flight budget (12 MiB with one
// compressor and the budget halved), pack in bounded time and verify. Before frames were cut by
// their size after such entries, the shared frame grew past the budget and
// the pack waited for the semaphore forever.
func TestPackHeaderOnlyTrees(t *testing.T) {
	defer func(n int64) { inflightChunks = n }(inflightChunks)
	inflightChunks = 1
	const budget = 12 << 20 // inflightBytes(1)
	if inflightBytes(1) != budget {
		t.Fatalf("budget %d: the trees below are sized for 12 MiB", inflightBytes(1))
	}
	longDir := strings.Repeat("d", 250) // 15 levels: paths of ~3.8 KiB, PAX headers
	deep := filepath.Join(strings.Split(strings.Repeat(longDir+"/", 15), "/")...)
	trees := map[string]func(dir string) int{
		"empty files": func(dir string) int {
			const n = 26_000 // 26,000 headers of 512 B: 12.7 MiB
			for i := range n {
				sub := filepath.Join(dir, fmt.Sprintf("%02d", i%50))
				os.MkdirAll(sub, 0o755)
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return n + 50
		},
		"long names": func(dir string) int {
			d := filepath.Join(dir, deep)
			os.MkdirAll(d, 0o755)
			const n = 3000 // ~3,000 PAX headers of ~5 KiB: 15 MiB
			for i := range n {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%0200d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return n + 15
		},
		"deep directories": func(dir string) int {
			n := 0
			for i := range 300 { // 300 chains of 15 levels: 4,800 dirs, ~15 MiB of headers
				p := filepath.Join(dir, fmt.Sprintf("%03d", i), deep)
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				n += 16
			}
			return n
		},
		"symlinks": func(dir string) int {
			os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644)
			target := strings.Repeat("./", 1900) + "index.html" // 3.8 KiB targets
			const n = 3000                                      // ~3,000 PAX headers of ~5 KiB: 15 MiB
			for i := range n {
				if err := os.Symlink(target, filepath.Join(dir, fmt.Sprintf("l%05d", i))); err != nil {
					t.Fatal(err)
				}
			}
			return n + 1
		},
	}
	for name, build := range trees {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			n := build(dir)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var art bytes.Buffer
			start := time.Now()
			res, err := PackDir(ctx, dir, &art, PackOptions{Concurrency: 1, Limits: Limits{MaxFiles: int64(n)}})
			if err != nil {
				t.Fatalf("pack: %v after %v", err, time.Since(start))
			}
			if res.TOC.TarLength < budget {
				t.Fatalf("tar stream of %d bytes: the tree does not reach the budget", res.TOC.TarLength)
			}
			if _, err := Verify(ctx, bytes.NewReader(art.Bytes()), int64(art.Len())); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries, %d MiB of tar, packed in %v", n, res.TOC.TarLength>>20, time.Since(start))
		})
	}
}

// TestOpenFileSwapped: a file replaced by a fifo or a symlink after the
// walk saw it neither blocks the pack (a fifo without a writer blocks an
// open for reading forever) nor is followed.
func TestOpenFileSwapped(t *testing.T) {
	dir := t.TempDir()
	fifo, sym := filepath.Join(dir, "fifo"), filepath.Join(dir, "sym")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc/passwd", sym)
	done := make(chan error, 1)
	go func() { _, err := readSmall(fifo, 10); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read 10 bytes of an empty fifo")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a fifo blocked")
	}
	if _, err := readSmall(sym, 10); err == nil {
		t.Fatal("followed a symlink")
	}
}

// TestNameBytesLimit: the paths and link targets of a tree are bounded in
// total (maxNameBytes) in an upload and in a packed directory, and a TOC
// over what a reader accepts is never written: ErrTooLarge (a 413), not a
// release that cannot be read.
func TestNameBytesLimit(t *testing.T) {
	defer func(n int64, m int) { maxNameBytes, maxTOCJSON = n, m }(maxNameBytes, maxTOCJSON)
	maxNameBytes = 1000
	var es []tarEntry
	for i := range 6 {
		es = append(es, reg(fmt.Sprintf("%03d", i)+strings.Repeat("n", 197), "x")) // 200 bytes each
	}
	err := Extract(context.Background(), bytes.NewReader(mkTar(t, es...)), t.TempDir(), Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1,200 bytes of names: %v", err)
	}
	dir := t.TempDir()
	for _, e := range es {
		os.WriteFile(filepath.Join(dir, e.name), nil, 0o644)
	}
	if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("pack, 1,200 bytes of names: %v", err)
	}
	maxNameBytes = 1 << 20
	maxTOCJSON = 500
	if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a TOC over the reader's limit: %v", err)
	}
}
