package release

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

type tarEntry struct {
	name, link string
	typ        byte
	body       string
}

func mkTar(t testing.TB, entries ...tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name, body string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: body} }

func TestExtractGood(t *testing.T) {
	body := mkTar(t, tarEntry{name: "./", typ: tar.TypeDir}, reg("./index.html", "hi"),
		reg("a/b/c.txt", "c"), tarEntry{name: "a/l", typ: tar.TypeSymlink, link: "b/c.txt"})
	zenc, _ := zstd.NewWriter(nil)
	for name, in := range map[string][]byte{"plain": body, "zstd": zenc.EncodeAll(body, nil)} {
		dir := t.TempDir()
		if err := Extract(context.Background(), bytes.NewReader(in), dir, Limits{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "a/l")); string(b) != "c" {
			t.Fatalf("%s: symlink content %q", name, b)
		}
	}
}

func TestExtractHostile(t *testing.T) {
	good := mkTar(t, reg("index.html", "hello world"), reg("b.txt", "b"))
	cases := map[string]struct {
		body []byte
		lim  Limits
		want error
	}{
		"absolute":         {body: mkTar(t, reg("/etc/passwd", "x")), want: ErrInvalid},
		"dotdot":           {body: mkTar(t, reg("a/../../x", "x")), want: ErrInvalid},
		"symlink escapes":  {body: mkTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "../../etc"}), want: ErrInvalid},
		"symlink absolute": {body: mkTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/etc"}), want: ErrInvalid},
		"through symlink":  {body: mkTar(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "d"}, reg("l/x", "x")), want: ErrInvalid},
		"hard link":        {body: mkTar(t, reg("a", "x"), tarEntry{name: "b", typ: tar.TypeLink, link: "a"}), want: ErrInvalid},
		"device":           {body: mkTar(t, tarEntry{name: "dev", typ: tar.TypeChar}), want: ErrInvalid},
		"fifo":             {body: mkTar(t, tarEntry{name: "p", typ: tar.TypeFifo}), want: ErrInvalid},
		"duplicate":        {body: mkTar(t, reg("a", "x"), reg("a", "y")), want: ErrInvalid},
		"truncated":        {body: good[:len(good)/2+100], want: ErrInvalid},
		"not a tar":        {body: bytes.Repeat([]byte("not a tar archive "), 100), want: ErrInvalid},
		"empty":            {body: nil, want: ErrInvalid},
		"bad zstd":         {body: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff}, 64)...), want: ErrInvalid},
		"too many files":   {body: good, lim: Limits{MaxFiles: 1}, want: ErrTooLarge},
		"too many bytes":   {body: good, lim: Limits{MaxBytes: 5}, want: ErrTooLarge},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := Extract(context.Background(), bytes.NewReader(c.body), dir, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "etc")); err == nil {
				t.Fatal("wrote outside the tree")
			}
		})
	}
}

func mkdir(p string) error { return os.Mkdir(p, 0o755) }

func readDir(p string) ([]os.DirEntry, error) { return os.ReadDir(p) }
