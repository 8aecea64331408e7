// Package pathres resolves paths inside a tree the way the kernel resolves
// them on disk: component by component, following every symlink met on the
// way (a relative target starts at the directory that holds the link),
// ".." going to the physical parent, with at most MaxLinks links followed.
// It works on an in-memory description of the tree (Tree), not on a disk,
// so that an upload is checked before any of it is used, and so that an
// unpacker learns where a path would land before it writes there.
//
// Two policies say what happens at the root. Contain (static releases,
// which anyone may extract with tar -x anywhere) refuses every route that
// leaves the root: an absolute target, or ".." at the root. InRoot (a
// rootfs, whose absolute links mean its own root) does what openat2
// RESOLVE_IN_ROOT and os.Root do: "/" is the root and ".." at the root
// stays there.
//
// Resolution costs O(components walked); each symlink's own resolution is
// computed once per policy and reused, so checking every link of a tree is
// linear in the size of its paths and targets.
package pathres

import (
	"errors"
	"slices"
	"strings"
)

// MaxLinks bounds the symlinks followed in one resolution, as Linux's
// MAXSYMLINKS (40).
const MaxLinks = 40

// Errors.
var (
	// ErrEscape: under Contain, the route leaves the root.
	ErrEscape = errors.New("leaves the root")
	// ErrLoop: more than MaxLinks symlinks on the route (a loop or a chain
	// too long), as ELOOP.
	ErrLoop = errors.New("too many levels of symbolic links")
	// ErrExist (Add): the path is already in the tree.
	ErrExist = errors.New("already exists")
	// ErrNotDir (Add): a parent of the path is a file or a symlink.
	ErrNotDir = errors.New("lies under a file or a symlink")
	// ErrPath (Add): the path is empty, absolute or not clean.
	ErrPath = errors.New("not a clean relative path")
)

// Kind is what a path of the tree is.
type Kind uint8

// Kinds of paths. Other is anything that is neither a directory nor a
// symlink: a regular file, a device, a fifo.
const (
	Missing Kind = iota
	Dir
	Other
	Symlink
)

func (k Kind) String() string {
	return [...]string{"missing", "dir", "file", "symlink"}[k]
}

// Policy says what a route that reaches above the root does.
type Policy uint8

const (
	// Contain refuses absolute targets and ".." at the root: ErrEscape.
	Contain Policy = iota
	// InRoot treats "/" as the root and ".." at the root as the root.
	InRoot
	// unbounded is Contain without MaxLinks (Escaping).
	unbounded
)

type node struct {
	name     string
	parent   *node // nil for the root
	kind     Kind
	explicit bool // added by Add, not only implied as a parent
	target   string
	children map[string]*node
	// memo: the resolution of a symlink's target, per policy.
	memo [3]*memo
	busy bool // being resolved: meeting it again is a loop
}

type memo struct {
	gen   uint64
	state state
	err   error
}

// Tree is a tree of directories, symlinks and other entries, built by Add
// in any order; a parent that was not added is an implied directory. The
// zero value is not usable: call New. A Tree is not safe for concurrent
// use (resolution memoizes).
type Tree struct {
	root  *node
	n     int     // entries, implied directories included
	links []*node // symlinks in the order added
	gen   uint64  // bumped by Add: memos of another generation are stale
	// lastDir caches the parent of the last Add: trees arrive in path
	// order, so siblings share it.
	lastDir     string
	lastDirNode *node
}

// New returns an empty tree (just the root directory).
func New() *Tree {
	return &Tree{root: &node{kind: Dir, explicit: true}}
}

// Add records the entry p (a clean relative path: no leading or trailing
// slash, no "." or ".." component) of kind k, with target for a symlink.
// Its missing parents become implied directories. A directory may be added
// over an implied one; anything else already there is ErrExist; a parent
// that is a file or a symlink is ErrNotDir. Add never follows symlinks.
func (t *Tree) Add(p string, k Kind, target string) error {
	if !clean(p) || k == Missing {
		return ErrPath
	}
	dirPath, name := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dirPath, name = p[:i], p[i+1:]
	}
	dir, err := t.mkdirs(dirPath)
	if err != nil {
		return err
	}
	t.gen++
	if n, ok := dir.children[name]; ok {
		if n.explicit || k != Dir {
			return ErrExist
		}
		n.explicit = true
		return nil
	}
	// Clone: a node keeps its component, not the whole path it came in.
	n := &node{name: strings.Clone(name), parent: dir, kind: k, explicit: true, target: target}
	t.n++
	if dir.children == nil {
		dir.children = map[string]*node{}
	}
	dir.children[name] = n
	if k == Symlink {
		t.links = append(t.links, n)
	}
	return nil
}

// Len is the number of entries of the tree, implied directories included
// (the root is not an entry).
func (t *Tree) Len() int { return t.n }

// mkdirs finds or implies the directory p.
func (t *Tree) mkdirs(p string) (*node, error) {
	if p == "" {
		return t.root, nil
	}
	if t.lastDirNode != nil && p == t.lastDir {
		return t.lastDirNode, nil
	}
	n := t.root
	for rest := p; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		c, ok := n.children[name]
		switch {
		case !ok:
			c = &node{name: strings.Clone(name), parent: n, kind: Dir}
			t.n++
			if n.children == nil {
				n.children = map[string]*node{}
			}
			n.children[name] = c
		case c.kind != Dir:
			return nil, ErrNotDir
		}
		n = c
	}
	t.lastDir, t.lastDirNode = p, n
	return n, nil
}

func clean(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// Stat returns what p (a path as Add takes, never through a symlink) is,
// and a symlink's target.
func (t *Tree) Stat(p string) (Kind, string) {
	n := t.lookup(p)
	if n == nil {
		return Missing, ""
	}
	return n.kind, n.target
}

func (t *Tree) lookup(p string) *node {
	n := t.root
	for rest := p; rest != "" && n != nil; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		n = n.children[name]
	}
	return n
}

// Result is where a path resolves.
type Result struct {
	st state
}

// Kind is what the resolved path is: never Symlink unless the last
// component was not followed.
func (r Result) Kind() Kind {
	if len(r.st.extra) > 0 {
		return Missing
	}
	return r.st.at.kind
}

// Dangling reports that the route met a component that does not exist, or
// a non-directory with components after it. On disk the route then fails
// (ENOENT, ENOTDIR); Path is where it would lead if every missing component
// were a directory, and it was checked against the root as such.
func (r Result) Dangling() bool { return r.st.dangling || r.Kind() == Missing }

// Path is the resolved path, clean and relative to the root ("" is the
// root itself).
func (r Result) Path() string {
	var names []string
	for n := r.st.at; n.parent != nil; n = n.parent {
		names = append(names, n.name)
	}
	slices.Reverse(names)
	return strings.Join(append(names, r.st.extra...), "/")
}

// state is a position of a walk: an existing directory (or, at the end,
// any entry), then names that do not exist below it.
type state struct {
	at       *node
	extra    []string
	dangling bool
	hops     int
}

// Resolve resolves p, a path relative to the root (with a leading "/",
// from the root: ErrEscape under Contain). With follow, a symlink in the
// last component is followed (stat, open); without, it is not (lstat,
// O_NOFOLLOW, creating the entry). A trailing "/" or "/." follows it in any
// case. Components that do not exist, or that are not directories but are
// followed by more, are walked as directories so that a later ".." is still
// checked against the root; Result.Dangling tells. The error is ErrEscape
// (Contain) or ErrLoop.
func (t *Tree) Resolve(p string, pol Policy, follow bool) (Result, error) {
	if strings.HasPrefix(p, "/") && pol != InRoot {
		return Result{}, ErrEscape
	}
	st := state{at: t.root}
	err := t.walk(&st, p, pol, follow)
	return Result{st: st}, err
}

// Link resolves the target of the symlink at p, as following it on disk
// does: a relative target from the directory that holds the link, every
// symlink followed, the last one included. p must be a symlink of the tree.
// Under Contain, a route that leaves the root after more than MaxLinks
// links may answer ErrEscape where the kernel stops with ELOOP: either
// way it is refused.
func (t *Tree) Link(p string, pol Policy) (Result, error) {
	n := t.lookup(p)
	if n == nil || n.kind != Symlink {
		return Result{}, ErrPath
	}
	st, err := t.linkOf(n, pol)
	return Result{st: st}, err
}

// linkOf is follow with the link itself counted, as opening it counts it.
func (t *Tree) linkOf(n *node, pol Policy) (state, error) {
	st, err := t.follow(n, pol)
	if err == nil && st.hops+1 > MaxLinks && pol != unbounded {
		err = ErrLoop
	}
	return st, err
}

// Links calls fn with every symlink of the tree, in the order added, and
// its resolution (Link); it stops at fn's first error and returns it.
func (t *Tree) Links(pol Policy, fn func(p, target string, r Result, err error) error) error {
	for _, n := range t.links {
		st, err := t.linkOf(n, pol)
		if ferr := fn(pathOf(n), n.target, Result{st: st}, err); ferr != nil {
			return ferr
		}
	}
	return nil
}

// Escaping returns the first symlink, in the order added, whose target
// leaves the root by some route under Contain, however many links the
// route takes: a chain longer than MaxLinks, which the kernel refuses with
// ELOOP but a tool with a higher limit (Go's filepath.EvalSymlinks follows
// 255) would follow, is checked to its end. A loop (a link whose
// resolution needs itself) reaches nothing, so it does not escape.
func (t *Tree) Escaping() (p, target string, found bool) {
	for _, n := range t.links {
		if _, err := t.follow(n, unbounded); errors.Is(err, ErrEscape) {
			return pathOf(n), n.target, true
		}
	}
	return "", "", false
}

func pathOf(n *node) string { return Result{st: state{at: n}}.Path() }

// follow resolves symlink n's target from its directory. The outcome does
// not depend on the route that met n, so it is memoized per policy (state
// hops counts the links followed inside it). Meeting n again while it is
// being resolved means that its resolution needs itself: a loop, for n and
// for every link whose resolution needs n. The recursion is as deep as the
// longest chain of links whose targets go through each other.
func (t *Tree) follow(n *node, pol Policy) (state, error) {
	if m := n.memo[pol]; m != nil && m.gen == t.gen {
		return m.state, m.err
	}
	if n.busy {
		return state{}, ErrLoop
	}
	n.busy = true
	st := state{at: n.parent}
	var err error
	if strings.HasPrefix(n.target, "/") {
		if pol != InRoot {
			err = ErrEscape
		}
		st.at = t.root
	}
	if err == nil {
		err = t.walk(&st, n.target, pol, true)
	}
	n.busy = false
	n.memo[pol] = &memo{gen: t.gen, state: st, err: err}
	return st, err
}

func (t *Tree) walk(st *state, rest string, pol Policy, follow bool) error {
	for rest != "" {
		var name string
		var more bool
		name, rest, more = strings.Cut(rest, "/")
		if (name == "." || name == "..") && len(st.extra) == 0 && st.at.kind != Dir {
			st.dangling = true // through a file: ENOTDIR on disk
		}
		switch name {
		case "", ".":
			continue
		case "..":
			switch {
			case len(st.extra) > 0:
				st.extra = st.extra[:len(st.extra)-1]
			case st.at.parent != nil:
				st.at = st.at.parent
			case pol != InRoot:
				return ErrEscape
			}
			continue
		}
		if len(st.extra) > 0 {
			st.extra = append(st.extra, name)
			continue
		}
		last := !more // a trailing "/" follows the last component
		c := st.at.children[name]
		switch {
		case c == nil:
			if !last {
				st.dangling = true
			}
			st.extra = append(st.extra, name)
		case c.kind == Symlink && (follow || !last):
			sub, err := t.follow(c, pol)
			if err != nil {
				return err
			}
			if st.hops += 1 + sub.hops; st.hops > MaxLinks && pol != unbounded {
				return ErrLoop
			}
			st.at, st.extra = sub.at, slices.Clone(sub.extra)
			st.dangling = st.dangling || sub.dangling
		case c.kind == Dir || last:
			st.at = c
		default: // a file with components after it: ENOTDIR on disk
			st.dangling = true
			st.extra = append(st.extra, name)
		}
	}
	return nil
}
