package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeTree writes a tree with every kind of entry the format handles.
func makeTree(t testing.TB, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", []byte("<h1>hello</h1>\n"), 0o644)
	write("empty.txt", nil, 0o600)
	write("bin/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o700)
	for i := range 300 {
		write(fmt.Sprintf("assets/js/chunk-%03d.js", i), []byte(strings.Repeat(fmt.Sprintf("console.log(%d);\n", i), 50+i*7)), 0o644)
	}
	big := make([]byte, 9<<20+123) // three frames of its own
	for i := range big {
		big[i] = byte('a' + rng.IntN(4))
	}
	write("media/big.bin", big, 0o644)
	mid := make([]byte, 100<<10)
	for i := range mid {
		mid[i] = byte(rng.IntN(256))
	}
	write("media/random.bin", mid, 0o644)
	write(strings.Repeat("long-directory-name/", 8)+"file.css", []byte("body{}"), 0o644)
	write("ünïcode/ファイル.txt", []byte("unicode"), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../index.html", filepath.Join(dir, "bin/link.html")); err != nil {
		t.Fatal(err)
	}
}

func pack(t testing.TB, dir string, opts PackOptions) (*Result, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := PackDir(context.Background(), dir, &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != res.SHA256 || int64(buf.Len()) != res.Size {
		t.Fatalf("result digest/size do not match the bytes written")
	}
	return res, buf.Bytes()
}

func TestPackReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	res, art := pack(t, dir, PackOptions{})
	ctx := context.Background()
	toc, err := Verify(ctx, bytes.NewReader(art), int64(len(art)))
	if err != nil {
		t.Fatal(err)
	}
	if toc.TreeSHA256 != res.TOC.TreeSHA256 || len(toc.Entries) != len(res.TOC.Entries) {
		t.Fatal("verified TOC differs from the packed one")
	}
	rr := ReaderAt(bytes.NewReader(art))
	var files int
	for _, e := range toc.Entries {
		if e.Type != TypeFile {
			continue
		}
		files++
		want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(ctx, rr, &e)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs (%v)", e.Path, err)
		}
	}
	if m := toc.Manifest(""); m.Files != int64(files) || m.Entrypoint != "index.html" {
		t.Fatalf("manifest %+v", m)
	}
	big, _ := toc.Lookup("media/big.bin")
	if big.Shared || len(big.Chunks) != 3 {
		t.Fatalf("big file frames: shared=%v chunks=%d", big.Shared, len(big.Chunks))
	}
	want, _ := os.ReadFile(filepath.Join(dir, "media/big.bin"))
	for _, r := range [][2]int64{{0, 1}, {ChunkSize - 5, 10}, {ChunkSize*2 + 7, 1000}, {int64(len(want)) - 3, 3}, {100, ChunkSize * 2}} {
		rc, err := OpenRange(ctx, rr, big, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v differs (%v)", r, err)
		}
	}
}

func TestPackDeterministic(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	first, _ := pack(t, dir, PackOptions{Concurrency: 2})
	later := time.Now().Add(time.Hour)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if info.Mode().IsRegular() {
			os.Chtimes(p, later, later)
			os.Chmod(p, info.Mode().Perm()|0o040) // group-read does not change the normalised mode
		}
		return nil
	})
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	second, _ := pack(t, dir, PackOptions{})
	if first.SHA256 != second.SHA256 {
		t.Fatalf("sha256 differs: %s vs %s", first.SHA256, second.SHA256)
	}
}

// TestTarInterop extracts the artifact with the system tar and zstd and
// compares the tree byte for byte.
func TestTarInterop(t *testing.T) {
	for _, tool := range []string{"tar", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	makeTree(t, dir)
	_, art := pack(t, dir, PackOptions{})
	file := filepath.Join(t.TempDir(), "r.tar.zst")
	os.WriteFile(file, art, 0o644)
	for _, cmd := range []string{"tar --zstd -xf " + file, "zstd -dc < " + file + " | tar -x"} {
		out := t.TempDir()
		c := exec.Command("sh", "-c", cmd)
		c.Dir = out
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, b)
		}
		compareTrees(t, dir, out)
	}
}

func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string]string {
		m := map[string]string{}
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			rel, _ := filepath.Rel(root, p)
			switch {
			case info.Mode()&os.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				m[rel] = "link:" + l
			case info.IsDir():
				m[rel] = "dir"
			default:
				data, _ := os.ReadFile(p)
				m[rel] = fmt.Sprintf("file:%o:%x", fileMode(uint32(info.Mode().Perm())), sha256.Sum256(data))
			}
			return nil
		})
		return m
	}
	ma, mb := list(a), list(b)
	if len(ma) != len(mb) {
		t.Fatalf("trees differ: %d vs %d entries", len(ma), len(mb))
	}
	for k, v := range ma {
		if mb[k] != v {
			t.Fatalf("%s: %q vs %q", k, v, mb[k])
		}
	}
}

func TestPackRejects(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644)
	os.Symlink("../../etc/passwd", filepath.Join(dir, "escape"))
	if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); err == nil || !strings.Contains(err.Error(), "outside the tree") {
		t.Fatalf("want symlink escape error, got %v", err)
	}
}

// TestPackPathOrder checks that the tree is packed in byte order of the
// relative paths, where a directory's contents sort as "name/" among its
// siblings ("a-b" and "a.js" come before "a/x").
func TestPackPathOrder(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a/x", "a/y/z", "a-b", "a.js", "a b/c", "ab", "a0/q", "A", "_", "a/.hidden", "a/x.d/1", "a/x-1", "~"}
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := pack(t, dir, PackOptions{})
	var got []string
	for _, e := range res.TOC.Entries {
		got = append(got, e.Path)
	}
	want := slices.Clone(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("entries not in path order:\n got %q\nwant %q", got, want)
	}
	if dirs := 5; len(got) != len(names)+dirs { // a, a/y, a b, a0, a/x.d
		t.Fatalf("%d entries for %d files and %d directories", len(got), len(names), dirs)
	}
}

// TestPackDuplicates packs a tree with identical large files (one of several
// chunks) and checks that reusing their frames gives the same artifact as
// compressing every copy, and that the copies read back.
func TestPackDuplicates(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(8))
		}
		return b
	}
	one, two, other := blob(200<<10), blob(ChunkSize+77<<10), blob(200<<10)
	files := map[string][]byte{
		"a/lib.js": one, "b/lib.js": one, "c/lib.js": one, "x.js": other,
		"a/big.bin": two, "z/big.bin": two, "small.txt": []byte("hi"),
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, art := pack(t, dir, PackOptions{})
	prev := dedupBudget
	dedupBudget = 0
	plain, _ := pack(t, dir, PackOptions{})
	dedupBudget = prev
	if res.SHA256 != plain.SHA256 {
		t.Fatalf("reusing frames changed the artifact: %s vs %s", res.SHA256, plain.SHA256)
	}
	toc, err := Verify(context.Background(), bytes.NewReader(art), int64(len(art)))
	if err != nil {
		t.Fatal(err)
	}
	rr := ReaderAt(bytes.NewReader(art))
	for name, want := range files {
		e, ok := toc.Lookup(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		got, err := ReadFile(context.Background(), rr, e)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs (%v)", name, err)
		}
	}
	a, _ := toc.Lookup("a/big.bin")
	z, _ := toc.Lookup("z/big.bin")
	if a.FrameOffset == z.FrameOffset || a.FrameLength != z.FrameLength || len(z.Chunks) != 2 {
		t.Fatalf("copies should have frames of their own with equal lengths: %+v %+v", a, z)
	}
}

// TestPackGolden pins the bytes of format version 1: a change here means
// every release of these trees gets a new sha256, which needs a new format
// version (docs/format.md).
func TestPackGolden(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	empty := t.TempDir()
	for _, c := range []struct{ dir, want string }{
		{empty, goldenEmpty},
		{dir, goldenTree},
	} {
		res, _ := pack(t, c.dir, PackOptions{})
		if res.SHA256 != c.want {
			t.Errorf("sha256 %s, want %s", res.SHA256, c.want)
		}
	}
}

const (
	goldenEmpty = "142a77ba0ddab5b51891677d0364cd47ed379887e17b3602b627fb6bca8efbc8"
	goldenTree  = "e5717135dde5dad49dce72cd9b062035b7f54f511aefe82469229616e5382a2c"
)

// TestPackStopsCleanly: an entry the format rejects, a limit reached and a
// cancelled context stop the pack with their error, in path order, and leave
// no goroutine of the walk, the readers or the compressors behind.
func TestPackStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 * aheadEntries {
		name := filepath.Join(dir, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%04d.txt", i))
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(strings.Repeat("x", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "d3", "f0100.fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	_, err := PackDir(context.Background(), dir, io.Discard, PackOptions{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "d3/f0100.fifo") {
		t.Fatalf("fifo: %v", err)
	}
	os.Remove(filepath.Join(dir, "d3", "f0100.fifo"))
	_, err = PackDir(context.Background(), dir, io.Discard, PackOptions{Limits: Limits{MaxFiles: 100}})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = PackDir(ctx, dir, io.Discard, PackOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left behind", n-before)
	}
}

// TestWalkErrorEndsGoroutines checks that when fn fails, walkTree has ended
// its lister and readers by the time it returns, even while the lister is
// still reading a large directory. It allows a goroutine a few milliseconds
// to exit after it has signalled that it is done, far less than the listing.
func TestWalkErrorEndsGoroutines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	os.Mkdir(filepath.Join(dir, "b"), 0o755)
	for i := range 20000 {
		if err := os.WriteFile(filepath.Join(dir, "b", fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	before := runtime.NumGoroutine()
	for round := range 5 {
		err := walkTree(context.Background(), dir, nil, Limits{}, 4, func(*srcEntry) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("walk: %v", err)
		}
		deadline := time.Now().Add(5 * time.Millisecond)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n != before {
			t.Fatalf("round %d: %d goroutines before, %d after", round, before, n)
		}
	}
}
