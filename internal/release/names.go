package release

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairnhq/cairn/internal/release/pathres"
)

// Limits of a name that any tree may hold: Linux's NAME_MAX and PATH_MAX.
const (
	maxComponent = 255
	maxPath      = 4096
)

// checkName accepts the path of an entry of a tree being packed or
// ingested: a clean relative path (checkRelPath) of valid UTF-8, with no
// control character (C0, DEL, C1: newlines and tabs included), no
// backslash, and no component over 255 bytes. The TOC is JSON, which
// cannot carry bytes that are not UTF-8 (they would become U+FFFD there
// while the tar keeps them); control characters break every line-based
// tool and log; a backslash is a separator on Windows and, in a URL, a
// slash to every browser, so such a file could not be linked to by its
// name. docs/format.md ("Names") is the rule.
func checkName(p string) error {
	if err := checkRelPath(p); err != nil {
		return err
	}
	if err := checkText(p); err != nil {
		return invalidf("path %q %s", p, err)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > maxComponent {
			return invalidf("path %q has a component longer than %d bytes", p, maxComponent)
		}
	}
	return nil
}

// checkText reports what makes s unfit for a name or a link target.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return errors.New("has a control character")
		case r == '\\':
			return errors.New("has a backslash")
		}
	}
	return nil
}

// CheckLink accepts the target of the symlink name as text: not empty, not
// absolute, at most 4096 bytes, no NUL, with the characters a name may
// hold, and not leaving the tree as text. Whether it leaves the tree
// through other links is checked once the whole tree is known (checkLinks).
func CheckLink(name, target string) error {
	switch {
	case target == "":
		return invalidf("symlink %q has an empty target", name)
	case len(target) > maxPath:
		return invalidf("symlink %q has a target longer than %d bytes", name, maxPath)
	case strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0):
		return invalidf("symlink %q points outside the tree", name)
	}
	if err := checkText(target); err != nil {
		return invalidf("symlink %q: its target %s", name, err)
	}
	return nil
}

// linkTree is the tree of entries, for resolving symlinks.
func linkTree(entries []Entry) (*pathres.Tree, error) {
	t := pathres.New()
	for i := range entries {
		e := &entries[i]
		k := pathres.Other
		switch e.Type {
		case TypeDir:
			k = pathres.Dir
		case TypeSymlink:
			k = pathres.Symlink
		}
		if err := t.Add(e.Path, k, e.Link); err != nil {
			return nil, treeErr(e.Path, err)
		}
	}
	return t, nil
}

// treeErr words an error of pathres.Tree.Add on path p.
func treeErr(p string, err error) error {
	switch {
	case errors.Is(err, pathres.ErrExist):
		return invalidf("duplicate path %q (or a directory of that name)", p)
	case errors.Is(err, pathres.ErrNotDir):
		return invalidf("%q lies under a file or a symlink", p)
	}
	return invalidf("path %q: %v", p, err)
}

// checkLinks resolves every symlink of t as the kernel would on disk,
// through the other links, and rejects one whose target leaves the tree by
// any route, however long (pathres.Tree.Escaping). A loop is kept: it
// reaches nothing, on disk as at the edge.
func checkLinks(t *pathres.Tree) error {
	if p, target, found := t.Escaping(); found {
		return invalidf("symlink %q points outside the tree (%q, followed through the links of the tree)", p, target)
	}
	return nil
}

// CheckName applies the rules of docs/format.md ("Names") to one path of a
// tree, as an upload's entries are checked: an incremental publish's
// manifest is held to them too.
func CheckName(p string) error { return checkName(p) }
