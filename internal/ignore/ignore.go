// Package ignore decides which paths of a tree `cairn pack` and `cairn
// publish` leave out, and recognises cairn data directories, which they
// refuse to publish at all.
//
// The rules, in order (a later matching rule wins, as in gitignore): the
// defaults (.git/, .env, .env.*, .DS_Store, .cairnignore), then the lines of
// the tree's root .cairnignore, in gitignore syntax (matched by go-git's
// gitignore package; a "!" line re-includes what a default left out). A
// directory that is left out is not walked. With IncludeIgnored no rule
// applies. A data directory is refused whatever the rules say.
//
// A source snapshot (`cairn publish --source DIR`, Options.GitIgnore) also
// honours .gitignore as git does, with the same matcher: the repository's
// .git/info/exclude, the root .gitignore, and the .gitignore of every
// directory the walk lists, each applying to its own directory and below
// (a deeper file's lines after a shallower one's, so that they win). Those
// rules come first, so that the defaults (.git/ and .env above all, and for
// a snapshot a .git file too) hold whatever they say and the .cairnignore,
// read last, has the last word.
package ignore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// File is the name of the ignore file read from the root of a tree.
const File = ".cairnignore"

// GitIgnoreFile is the name of the .gitignore files read with
// Options.GitIgnore, at the root and in every directory walked.
const GitIgnoreFile = ".gitignore"

// MaxFileBytes bounds the size of a .cairnignore (and of a .gitignore).
const MaxFileBytes = 1 << 20

// Defaults are the rules that apply before the .cairnignore's.
var Defaults = []string{".git/", ".env", ".env.*", ".DS_Store", File}

// GitFile is a default of snapshots only (Options.GitIgnore): the .git
// file of a linked work tree or a submodule, which git never tracks and
// which names a path on this machine. It comes before ".git/" so that a
// .git directory still counts against that.
const GitFile = ".git"

// Source names where a rule comes from.
const SourceDefault = "default"

// ErrDataDir marks the error of a tree that contains a cairn data directory.
var ErrDataDir = errors.New("the tree contains a cairn data directory")

// Options tune a Set.
type Options struct {
	IncludeIgnored bool // apply no rule (a data directory is still refused)
	GitIgnore      bool // also apply .git/info/exclude and the .gitignore files, before the defaults
}

// rule is one parsed pattern and where it was written.
type rule struct {
	text, source string
	pat          gitignore.Pattern
}

// Set holds the rules of one tree and counts what each left out. Its
// methods are safe for concurrent use.
type Set struct {
	root  string
	git   bool    // read the .gitignore of each directory listed
	rules []*rule // the defaults, then the .cairnignore's; fixed by Load

	mu     sync.Mutex
	gitRs  []*rule         // the git rules, lowest precedence first; grows as directories are listed
	loaded map[string]bool // directories whose .gitignore is read
	counts map[*rule]int   // rule → paths left out
}

// Load reads the rules of the tree rooted at dir: the defaults and dir's
// .cairnignore, if any, unless opts.IncludeIgnored; with opts.GitIgnore,
// the repository's .git/info/exclude and dir's .gitignore before them (and
// Listed reads the .gitignore of each directory below as it is listed).
func Load(dir string, opts Options) (*Set, error) {
	s := &Set{root: dir, counts: map[*rule]int{}, loaded: map[string]bool{}}
	if opts.IncludeIgnored {
		return s, nil
	}
	if opts.GitIgnore {
		s.git = true
		rules, err := readExclude(dir)
		if err != nil {
			return nil, err
		}
		s.gitRs = append(s.gitRs, rules...)
		if rules, err = readGitIgnore(dir, ""); err != nil {
			return nil, err
		}
		s.gitRs = append(s.gitRs, rules...)
		s.loaded[""] = true
	}
	defaults := Defaults
	if opts.GitIgnore {
		defaults = append([]string{GitFile}, Defaults...)
	}
	for _, p := range defaults {
		s.rules = append(s.rules, &rule{text: p, source: SourceDefault, pat: gitignore.ParsePattern(p, nil)})
	}
	rules, err := readRules(filepath.Join(dir, File), File, nil)
	if err != nil {
		return nil, err
	}
	s.rules = append(s.rules, rules...)
	return s, nil
}

// readRules reads the rules of the file at path, named name in errors and
// sources, its patterns applying below domain; a missing file has none.
func readRules(path, name string, domain []string) ([]*rule, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileBytes)
	}
	return parse(name, b, domain)
}

// parse reads gitignore lines of the file name: blank lines and lines
// starting with "#" are skipped; every other line is a pattern named
// "name:N", applying to the paths below domain (nil: the root). A line
// that is not valid UTF-8 or holds a NUL is an error.
func parse(name string, b []byte, domain []string) ([]*rule, error) {
	var out []*rule
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if !validLine(line) {
			return nil, fmt.Errorf("%s:%d: not valid UTF-8 text", name, n)
		}
		out = append(out, &rule{text: line, source: fmt.Sprintf("%s:%d", name, n), pat: gitignore.ParsePattern(line, domain)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func validLine(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s && !strings.ContainsRune(s, 0)
}

// Listed is called by a walker with the entry names of each directory it
// lists (rel "" is the root), before Skip is asked about any of them: a
// data directory is ErrDataDir. With Options.GitIgnore, the directory's
// .gitignore, if any, is read here; its rules apply to rel and below.
func (s *Set) Listed(rel string, names []string) error {
	if s == nil {
		return nil
	}
	if err := CheckDir(s.root, rel, names); err != nil {
		return err
	}
	if !s.git || !slices.Contains(names, GitIgnoreFile) {
		return nil
	}
	s.mu.Lock()
	done := s.loaded[rel]
	s.mu.Unlock()
	if done {
		return nil
	}
	rules, err := readGitIgnore(s.root, rel)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded[rel] {
		s.loaded[rel] = true
		s.gitRs = append(s.gitRs, rules...)
	}
	return nil
}

// Skip reports whether the entry rel (slash-separated, relative to the
// root; abs on disk) is left out, and counts it against the rule that
// decided. A directory left out is not walked, so Skip checks it for the
// data directory shape itself (ErrDataDir).
func (s *Set) Skip(rel, abs string, isDir bool) (bool, error) {
	if s == nil || !s.skip(rel, isDir) {
		return false, nil
	}
	if isDir && IsDataDirAt(abs) {
		return true, DataDirError(s.root, rel)
	}
	return true, nil
}

// skip asks the rules, the last first: the .cairnignore's, the defaults,
// then the git rules (the deepest directory's, the last line, first).
func (s *Set) skip(rel string, isDir bool) bool {
	s.mu.Lock()
	git := s.gitRs
	s.mu.Unlock()
	if len(s.rules) == 0 && len(git) == 0 {
		return false
	}
	path := strings.Split(rel, "/")
	for _, rules := range [][]*rule{s.rules, git} {
		for i := len(rules) - 1; i >= 0; i-- {
			switch rules[i].pat.Match(path, isDir) {
			case gitignore.Exclude:
				s.mu.Lock()
				s.counts[rules[i]]++
				s.mu.Unlock()
				return true
			case gitignore.Include:
				return false
			}
		}
	}
	return false
}

// RuleCount is one rule that left paths out.
type RuleCount struct {
	Rule   string `json:"rule"`
	Source string `json:"source"` // "default", ".cairnignore:N", ".gitignore:N", "DIR/.gitignore:N" or ".git/info/exclude:N"
	Paths  int    `json:"paths"`
}

// Summary says what a walk left out. A directory left out counts as one
// path (what is below it is not walked).
type Summary struct {
	Paths int         `json:"paths"`
	Rules []RuleCount `json:"rules"`
}

// Summary returns the counts so far, rules in the order they apply: the
// git rules in the order they were read, the defaults, the .cairnignore's.
func (s *Set) Summary() Summary {
	out := Summary{Rules: []RuleCount{}}
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rules := range [][]*rule{s.gitRs, s.rules} {
		for _, r := range rules {
			if n := s.counts[r]; n > 0 {
				out.Paths += n
				out.Rules = append(out.Rules, RuleCount{Rule: r.text, Source: r.source, Paths: n})
			}
		}
	}
	return out
}

// String is the human form: "3 paths left out (.git/ ×1 default, *.map ×2 .cairnignore:3)".
func (sum Summary) String() string {
	if sum.Paths == 0 {
		return "0 paths left out"
	}
	parts := make([]string, len(sum.Rules))
	for i, r := range sum.Rules {
		parts[i] = fmt.Sprintf("%s ×%d %s", r.Rule, r.Paths, r.Source)
	}
	noun := "paths"
	if sum.Paths == 1 {
		noun = "path"
	}
	return fmt.Sprintf("%d %s left out (%s)", sum.Paths, noun, strings.Join(parts, ", "))
}
