package client

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// testTree builds a small tree with nested dirs, an executable and symlinks.
func testTree(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "<h1>hi</h1>", 0o644)
	writeFile(t, filepath.Join(dir, "a.txt"), "a", 0o600)
	writeFile(t, filepath.Join(dir, "a", "b", "c.css"), "body{}", 0o644)
	writeFile(t, filepath.Join(dir, "bin", "run"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "empty"), "", 0o644)
	if err := os.Symlink("index.html", filepath.Join(dir, "home.html")); err != nil {
		t.Fatal(err)
	}
	// A symlink to a directory must not be followed.
	if err := os.Symlink("a/b", filepath.Join(dir, "link-dir")); err != nil {
		t.Fatal(err)
	}
	return dir
}

type tarEntry struct {
	typ           byte
	mode          int64
	link, content string
}

func readTar(t *testing.T, r io.Reader) ([]string, map[string]tarEntry) {
	t.Helper()
	tr := tar.NewReader(r)
	var names []string
	got := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		got[h.Name] = tarEntry{h.Typeflag, h.Mode, h.Linkname, string(b)}
	}
}

func TestWriteTreeRoundTrip(t *testing.T) {
	dir := testTree(t)
	var buf bytes.Buffer
	var progressed int64
	if err := WriteTree(context.Background(), dir, nil, &buf, func(n int64) { progressed += n }); err != nil {
		t.Fatal(err)
	}
	names, got := readTar(t, bytes.NewReader(buf.Bytes()))
	want := map[string]tarEntry{
		"a/":         {tar.TypeDir, 0o755, "", ""},
		"a/b/":       {tar.TypeDir, 0o755, "", ""},
		"a/b/c.css":  {tar.TypeReg, 0o644, "", "body{}"},
		"a.txt":      {tar.TypeReg, 0o644, "", "a"},
		"bin/":       {tar.TypeDir, 0o755, "", ""},
		"bin/run":    {tar.TypeReg, 0o755, "", "#!/bin/sh\n"},
		"empty":      {tar.TypeReg, 0o644, "", ""},
		"home.html":  {tar.TypeSymlink, 0o777, "index.html", ""},
		"index.html": {tar.TypeReg, 0o644, "", "<h1>hi</h1>"},
		"link-dir":   {tar.TypeSymlink, 0o777, "a/b", ""},
	}
	if len(got) != len(want) || len(names) != len(want) {
		t.Fatalf("entries %v, want %d", names, len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %+v, want %+v", name, got[name], w)
		}
	}
	trimmed := make([]string, len(names))
	for i, n := range names {
		if strings.HasPrefix(n, "./") || strings.HasPrefix(n, "/") {
			t.Errorf("name %q is not relative", n)
		}
		trimmed[i] = strings.TrimSuffix(n, "/")
	}
	if !sort.StringsAreSorted(trimmed) {
		t.Errorf("entries not sorted: %v", names)
	}
	_, size, err := TreeSize(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if progressed != size {
		t.Errorf("progress reported %d bytes, tree has %d", progressed, size)
	}
}

func TestWriteTreeDeterministic(t *testing.T) {
	dir := testTree(t)
	var a, b bytes.Buffer
	if err := WriteTree(context.Background(), dir, nil, &a, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), testTime, testTime); err != nil {
		t.Fatal(err)
	}
	if err := WriteTree(context.Background(), dir, nil, &b, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same tree, different tar bytes")
	}
}

func TestTreeSize(t *testing.T) {
	files, size, err := TreeSize(testTree(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("<h1>hi</h1>") + 1 + len("body{}") + len("#!/bin/sh\n")); files != 5 || size != want {
		t.Errorf("TreeSize = %d files, %d bytes; want 5, %d", files, size, want)
	}
}

func TestWriteTreeErrors(t *testing.T) {
	if err := WriteTree(context.Background(), filepath.Join(t.TempDir(), "nope"), nil, io.Discard, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "x", 0o644)
	if err := WriteTree(context.Background(), f, nil, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteTree(ctx, testTree(t), nil, io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// failWriter fails after n bytes, like a closed pipe.
type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n < len(b) {
		return 0, io.ErrClosedPipe
	}
	f.n -= len(b)
	return len(b), nil
}

func TestWriteTreeWriterFails(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "big"), strings.Repeat("x", 1<<20), 0o644)
	if err := WriteTree(context.Background(), dir, nil, &failWriter{n: 4096}, nil); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("got %v, want the writer's error", err)
	}
}
