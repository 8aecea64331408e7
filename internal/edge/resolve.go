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
// following symlinks in any component as the kernel does once the release
// is extracted (a target starts at the directory that holds the link, and
// ".." goes to the physical parent, not to the text before it: the same
// rule as release/pathres, which checked every link at publish), never
// outside the tree and at most maxLinks of them. It returns the file or
// directory found and its resolved path.
func lookup(toc *release.TOC, p string) (*release.Entry, string, bool) {
	if p == "" {
		return rootDir, "", true
	}
	if e, ok := toc.Lookup(p); ok && e.Type != release.TypeSymlink {
		return e, p, true // fast path: no link on the way
	}
	cur, rest := "", p // resolved directory, components still to walk
	for links := 0; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		switch name {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				return nil, "", false
			}
			if cur = path.Dir(cur); cur == "." {
				cur = ""
			}
			continue
		}
		next := joinRel(cur, name)
		e, ok := toc.Lookup(next)
		switch {
		case !ok:
			return nil, "", false
		case e.Type == release.TypeSymlink:
			if links++; links > maxLinks || strings.HasPrefix(e.Link, "/") {
				return nil, "", false
			}
			rest = joinRel(e.Link, rest) // from cur, the link's directory
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
