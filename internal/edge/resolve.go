package edge

import (
	"path"
	"strings"

	"github.com/cairnhq/cairn/internal/release"
)

// maxLinks bounds the symlinks followed to resolve one path.
const maxLinks = 16

// rootDir stands for the tree's root, which has no TOC entry.
var rootDir = &release.Entry{Type: release.TypeDir}

// lookup resolves a clean relative path ("" is the root) in toc,
// following symlinks in any component, never outside the tree and at most
// maxLinks of them. It returns the file or directory found and its
// resolved path.
func lookup(toc *release.TOC, p string) (*release.Entry, string, bool) {
	if p == "" {
		return rootDir, "", true
	}
	if e, ok := toc.Lookup(p); ok && e.Type != release.TypeSymlink {
		return e, p, true // fast path: no link on the way
	}
	cur, rest := "", p // resolved prefix, components still to walk
	for links := 0; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		next := name
		if cur != "" {
			next = cur + "/" + name
		}
		e, ok := toc.Lookup(next)
		switch {
		case !ok:
			return nil, "", false
		case e.Type == release.TypeSymlink:
			if links++; links > maxLinks || strings.HasPrefix(e.Link, "/") {
				return nil, "", false
			}
			target := path.Join(path.Dir(next), e.Link)
			if target == ".." || strings.HasPrefix(target, "../") {
				return nil, "", false
			}
			if target == "." {
				target = ""
			}
			cur, rest = "", joinRel(target, rest)
		case e.Type == release.TypeDir:
			cur = next
		case rest != "": // a file with components after it
			return nil, "", false
		default:
			return e, next, true
		}
	}
	if cur == "" {
		return rootDir, "", true
	}
	e, _ := toc.Lookup(cur)
	return e, cur, true
}

func joinRel(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "/" + b
}
