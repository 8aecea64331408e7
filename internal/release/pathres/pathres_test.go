package pathres

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type ent struct{ p, target string }

// tree builds a tree: a target makes a symlink, a trailing "/" a directory,
// anything else a file.
func tree(t testing.TB, ents ...ent) *Tree {
	t.Helper()
	tr := New()
	for _, e := range ents {
		k, p := Other, e.p
		switch {
		case e.target != "":
			k = Symlink
		case strings.HasSuffix(p, "/"):
			k, p = Dir, strings.TrimSuffix(p, "/")
		}
		if err := tr.Add(p, k, e.target); err != nil {
			t.Fatalf("add %q: %v", e.p, err)
		}
	}
	return tr
}

func TestLinkCases(t *testing.T) {
	cases := []struct {
		name string
		ents []ent
		link string
		want string // resolved path, or an error's text
	}{
		{"plain", []ent{{"a/f", ""}, {"l", "a/f"}}, "l", "a/f"},
		{"text-clean escape", []ent{{"l", "../x"}}, "l", "leaves the root"},
		{"absolute", []ent{{"l", "/etc/passwd"}}, "l", "leaves the root"},
		{"chain through up", []ent{{"a/up", ".."}, {"a/esc", "up/../.."}}, "a/esc", "leaves the root"},
		{"chain through up, link first", []ent{{"a/esc", "up/../.."}, {"a/up", ".."}}, "a/esc", "leaves the root"},
		{"up stays inside", []ent{{"a/up", ".."}, {"a/ok", "up/b"}, {"b/", ""}}, "a/ok", "b"},
		{"link through link", []ent{{"x", "y"}, {"y", "z/.."}, {"z/", ""}}, "x", ""},
		{"link through link escapes", []ent{{"x", "y/f"}, {"y", "../out"}}, "x", "leaves the root"},
		{"dir link then dotdot", []ent{{"e/f/", ""}, {"d/l", "../e/f"}, {"d/m", "l/../.."}}, "d/m", ""},
		{"dir link then dotdot escapes", []ent{{"e/f/", ""}, {"d/l", "../e/f"}, {"d/n", "l/../../.."}}, "d/n", "leaves the root"},
		{"deep dir link then dotdot escapes", []ent{{"a/b/c/", ""}, {"l", "a/b/c"}, {"m", "l/../../../.."}}, "m", "leaves the root"},
		{"loop", []ent{{"a", "b"}, {"b", "a"}}, "a", "too many levels of symbolic links"},
		{"self", []ent{{"a", "a"}}, "a", "too many levels of symbolic links"},
		{"loop through dir", []ent{{"d/l", "../d/l/x"}}, "d/l", "too many levels of symbolic links"},
		{"dangling inside", []ent{{"l", "nope/x"}}, "l", "nope/x"},
		{"dangling then dotdot escapes", []ent{{"l", "nope/../.."}}, "l", "leaves the root"},
		{"through a file then dotdot escapes", []ent{{"f", ""}, {"l", "f/../.."}}, "l", "leaves the root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := tree(t, c.ents...)
			r, err := tr.Link(c.link, Contain)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = r.Path()
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestChainLength(t *testing.T) {
	for _, n := range []int{MaxLinks, MaxLinks + 1} {
		tr := New()
		tr.Add("f", Other, "")
		for i := range n {
			target := fmt.Sprintf("l%d", i+1)
			if i == n-1 {
				target = "f"
			}
			tr.Add(fmt.Sprintf("l%d", i), Symlink, target)
		}
		_, err := tr.Link("l0", Contain)
		if (n > MaxLinks) != errors.Is(err, ErrLoop) {
			t.Fatalf("a chain of %d links: %v", n, err)
		}
	}
}

// TestEscaping: a chain past MaxLinks whose end leaves the root is found
// (a tool that follows more links than the kernel would escape), while
// loops and long chains that stay inside are not escapes.
func TestEscaping(t *testing.T) {
	build := func(n int, end string) *Tree {
		tr := New()
		tr.Add("f", Other, "")
		tr.Add("self", Symlink, "self")
		tr.Add("p", Symlink, "q/x")
		tr.Add("q", Symlink, "p/..")
		for i := range n {
			target := fmt.Sprintf("l%d", i+1)
			if i == n-1 {
				target = end
			}
			tr.Add(fmt.Sprintf("l%d", i), Symlink, target)
		}
		return tr
	}
	tr := build(60, "../x")
	if _, err := tr.Link("l0", Contain); err == nil {
		t.Fatal("a chain of 60 that escapes is accepted")
	}
	if p, _, found := tr.Escaping(); !found || p != "l0" {
		t.Fatalf("escape at the end of a chain of 60: %q %v", p, found)
	}
	tr = build(60, "f")
	if p, target, found := tr.Escaping(); found {
		t.Fatalf("%s -> %s escapes?", p, target)
	}
	if _, err := tr.Link("l0", InRoot); !errors.Is(err, ErrLoop) {
		t.Fatalf("the kernel stops a chain of 60: %v", err)
	}
}

func TestInRoot(t *testing.T) {
	tr := tree(t, ent{"etc/passwd", ""}, ent{"bin", "/usr/bin"}, ent{"usr/bin/sh", ""}, ent{"a/up", "../../../.."})
	for p, want := range map[string]string{
		"bin/sh":               "usr/bin/sh",
		"/../../etc/passwd":    "etc/passwd",
		"a/up/etc/passwd":      "etc/passwd",
		"bin/../../bin/../bin": "usr/bin",
	} {
		r, err := tr.Resolve(p, InRoot, true)
		if err != nil || r.Path() != want || r.Dangling() {
			t.Fatalf("%s: %q %v dangling=%v, want %q", p, r.Path(), err, r.Dangling(), want)
		}
	}
	if _, err := tr.Resolve("bin/sh", Contain, true); !errors.Is(err, ErrEscape) {
		t.Fatalf("absolute link under Contain: %v", err)
	}
	r, err := tr.Resolve("bin", InRoot, false)
	if err != nil || r.Kind() != Symlink || r.Path() != "bin" {
		t.Fatalf("nofollow: %v %v %q", err, r.Kind(), r.Path())
	}
	r, _ = tr.Resolve("bin/", InRoot, false)
	if r.Kind() != Dir || r.Path() != "usr/bin" {
		t.Fatalf("trailing slash follows: %v %q", r.Kind(), r.Path())
	}
}

func TestAdd(t *testing.T) {
	tr := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Add("x/y", Dir, ""))
	if err := tr.Add("x", Other, ""); !errors.Is(err, ErrExist) {
		t.Fatalf("file over an implied dir: %v", err)
	}
	if err := tr.Add("x", Symlink, "y"); !errors.Is(err, ErrExist) {
		t.Fatalf("symlink over an implied dir: %v", err)
	}
	must(tr.Add("x", Dir, "")) // explicit over implied
	if err := tr.Add("x", Dir, ""); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate dir: %v", err)
	}
	must(tr.Add("l", Symlink, "x"))
	if err := tr.Add("l/z", Other, ""); !errors.Is(err, ErrNotDir) {
		t.Fatalf("under a symlink: %v", err)
	}
	for _, p := range []string{"", "/a", "a/", "a/../b", "./a", "a//b"} {
		if err := tr.Add(p, Other, ""); !errors.Is(err, ErrPath) {
			t.Fatalf("%q: %v", p, err)
		}
	}
}

// TestManyLinksLinear: a chain of 20,000 links with 1 KiB targets is
// checked in linear time (each link resolved once).
func TestManyLinksLinear(t *testing.T) {
	tr := New()
	pad := strings.Repeat("./", 512)
	const n = 20_000
	for i := range n {
		tr.Add(fmt.Sprintf("l%06d", i), Symlink, pad+fmt.Sprintf("l%06d", i+1))
	}
	var loops int
	err := tr.Links(Contain, func(p, target string, r Result, err error) error {
		if errors.Is(err, ErrLoop) {
			loops++
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil || loops != n-MaxLinks {
		t.Fatalf("%v, %d loops", err, loops)
	}
}

// FuzzLink builds a small tree from the input, writes it to disk below two
// levels of directories, and checks every link against the kernel: a link
// the resolver accepts under Contain never leads outside the root, and
// where the kernel resolves it the resolver finds the same path and kind.
func FuzzLink(f *testing.F) {
	f.Add("d a/up ..\nl a/esc up/../..\nf a/b\n")
	f.Add("d e/f\nl d/l ../e/f\nl d/m l/../..\nl x y\nl y x\n")
	f.Add("l a b/c\nd b\nl b/c ../../q\nf q\n")
	f.Fuzz(func(t *testing.T, spec string) {
		lines := strings.Split(spec, "\n")
		if len(lines) > 12 || len(spec) > 400 {
			return
		}
		tr := New()
		base := t.TempDir()
		root := filepath.Join(base, "p", "q", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			fs := strings.Fields(l)
			if len(fs) < 2 || strings.ContainsRune(l, 0) {
				continue
			}
			p := fs[1]
			var err error
			switch {
			case fs[0] == "d":
				err = tr.Add(p, Dir, "")
			case fs[0] == "f":
				err = tr.Add(p, Other, "")
			case fs[0] == "l" && len(fs) == 3:
				err = tr.Add(p, Symlink, fs[2])
			default:
				continue
			}
			if err != nil {
				continue
			}
			abs := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
				t.Fatalf("mkdir for %q: %v", p, err)
			}
			switch fs[0] {
			case "d":
				err = os.Mkdir(abs, 0o755)
			case "f":
				err = os.WriteFile(abs, nil, 0o644)
			case "l":
				err = os.Symlink(fs[2], abs)
			}
			if err != nil && !errors.Is(err, os.ErrExist) {
				t.Fatalf("%q: %v", l, err)
			}
		}
		if p, target, found := tr.Escaping(); !found {
			// No link leaves the root by any route: however far a tool
			// follows them, every link that resolves lands inside.
			tr.Links(Contain, func(p, _ string, _ Result, _ error) error {
				real, err := filepath.EvalSymlinks(filepath.Join(root, p))
				if err == nil && real != root && !strings.HasPrefix(real, root+"/") {
					t.Fatalf("%s resolves to %s, outside the root", p, real)
				}
				return nil
			})
		} else if _, err := tr.Link(p, Contain); err == nil {
			t.Fatalf("Escaping finds %s -> %s, Link accepts it", p, target)
		}
		tr.Links(Contain, func(p, target string, r Result, err error) error {
			abs := filepath.Join(root, p)
			_, serr := os.Stat(abs)
			// A route through a missing component or a file fails on disk,
			// where the resolver goes on as if it were a directory.
			dangling := errors.Is(serr, syscall.ENOENT) || errors.Is(serr, syscall.ENOTDIR)
			if errors.Is(err, ErrLoop) && !errors.Is(serr, syscall.ELOOP) && !dangling {
				t.Fatalf("%s -> %s: resolver says loop, kernel says %v", p, target, serr)
			}
			if errors.Is(serr, syscall.ELOOP) && err == nil {
				t.Fatalf("%s -> %s: kernel says loop, resolver accepts %q", p, target, r.Path())
			}
			if err != nil || serr != nil {
				return nil
			}
			real, eerr := filepath.EvalSymlinks(abs)
			if eerr != nil {
				t.Fatalf("%s: stat works but EvalSymlinks: %v", p, eerr)
			}
			want := filepath.Join(root, r.Path())
			if real != want || r.Dangling() {
				t.Fatalf("%s -> %s: kernel %s, resolver %s (dangling %v)", p, target, real, want, r.Dangling())
			}
			return nil
		})
	})
}
