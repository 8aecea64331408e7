package ignore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// walk lists dir as the walkers do (internal/release, internal/client):
// Listed for each directory walked, then Skip for its entries; a directory
// left out is not walked. It returns the paths kept.
func walk(t *testing.T, s *Set, dir string) ([]string, error) {
	t.Helper()
	var kept []string
	var dirFn func(rel string) error
	dirFn = func(rel string) error {
		des, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		names := make([]string, len(des))
		for i, d := range des {
			names[i] = d.Name()
		}
		if err := s.Listed(rel, names); err != nil {
			return err
		}
		for _, d := range des {
			child := d.Name()
			if rel != "" {
				child = rel + "/" + child
			}
			if skip, err := s.Skip(child, filepath.Join(dir, filepath.FromSlash(child)), d.IsDir()); err != nil {
				return err
			} else if skip {
				continue
			}
			kept = append(kept, child)
			if d.IsDir() {
				if err := dirFn(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := dirFn("")
	slices.Sort(kept)
	return kept, err
}

// gitTree is a repository with nested .gitignore files and an info/exclude.
func gitTree(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{
		".git/HEAD":         "ref: refs/heads/main\n",
		".git/info/exclude": "# git's own\nsecret.txt\n",
		GitIgnoreFile:       "*.log\n/vendor/\n",
		"go.mod":            "module x\n",
		"secret.txt":        "x",
		"a.log":             "x",
		"keep.log":          "x",
		"vendor/.gitignore": "\xff\n", // never read: vendor/ is left out
		"vendor/m.go":       "x",
		// pkg: its build dir, its gen dir and its *.tmp are left out;
		// keep.log comes back; .env does not (a default).
		"pkg/.gitignore":   "build/\n/gen\n*.tmp\n!keep.log\n!.env\nlater\n!later\n",
		"pkg/main.go":      "x",
		"pkg/keep.log":     "x",
		"pkg/other.log":    "x",
		"pkg/.env":         "x",
		"pkg/later":        "x",
		"pkg/build/out.o":  "x",
		"pkg/gen/g.go":     "x",
		"pkg/x.tmp":        "x",
		"pkg/sub/gen/g.go": "x", // /gen is pkg's own gen only
		// pkg/sub overrides pkg: its x.tmp comes back.
		"pkg/sub/.gitignore": "!x.tmp\n",
		"pkg/sub/x.tmp":      "x",
		"pkg/sub/y.tmp":      "x",
		// a sibling: pkg's rules do not apply here.
		"web/build/index.html": "x",
		"web/gen/g.go":         "x",
		"web/x.tmp":            "x",
		"web/keep.log":         "x",
	} {
		write(t, dir, name, body)
	}
	return dir
}

// TestNestedGitIgnore: with GitIgnore, .git/info/exclude, the root
// .gitignore and each walked directory's .gitignore apply as in git, the
// defaults still hold and the .cairnignore has the last word.
func TestNestedGitIgnore(t *testing.T) {
	dir := gitTree(t)
	write(t, dir, File, "!pkg/build/\n")
	s, err := Load(dir, Options{GitIgnore: true})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := walk(t, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		GitIgnoreFile, "go.mod",
		"pkg", "pkg/.gitignore", "pkg/build", "pkg/build/out.o", "pkg/keep.log", "pkg/later", "pkg/main.go",
		"pkg/sub", "pkg/sub/.gitignore", "pkg/sub/gen", "pkg/sub/gen/g.go", "pkg/sub/x.tmp",
		"web", "web/build", "web/build/index.html", "web/gen", "web/gen/g.go", "web/x.tmp",
	}
	if !slices.Equal(kept, want) {
		t.Errorf("kept\n%q\nwant\n%q", kept, want)
	}
	sum := s.Summary()
	wantRules := []RuleCount{
		{"secret.txt", ".git/info/exclude:2", 1},
		{"*.log", ".gitignore:1", 4}, // a.log, keep.log, pkg/other.log, web/keep.log
		{"/vendor/", ".gitignore:2", 1},
		{"/gen", "pkg/.gitignore:2", 1},
		{"*.tmp", "pkg/.gitignore:3", 2}, // pkg/x.tmp, pkg/sub/y.tmp
		{".git/", SourceDefault, 1},
		{".env", SourceDefault, 1}, // pkg/.env, whatever pkg/.gitignore says
		{".cairnignore", SourceDefault, 1},
	}
	if !slices.Equal(sum.Rules, wantRules) || sum.Paths != 12 {
		t.Errorf("summary %d\n%+v\nwant\n%+v", sum.Paths, sum.Rules, wantRules)
	}

	// Without the .cairnignore's "!", pkg/build is left out by pkg's rule.
	os.Remove(filepath.Join(dir, File))
	if s, err = Load(dir, Options{GitIgnore: true}); err != nil {
		t.Fatal(err)
	}
	if kept, err = walk(t, s, dir); err != nil || slices.Contains(kept, "pkg/build") {
		t.Errorf("pkg/build kept: %v %q", err, kept)
	}
	if got := s.Summary().Rules[3]; got != (RuleCount{"build/", "pkg/.gitignore:1", 1}) {
		t.Errorf("rule %+v", got)
	}
	// A second walk with the same Set reads no file twice.
	if again, err := walk(t, s, dir); err != nil || !slices.Equal(again, kept) {
		t.Errorf("second walk: %v %q", err, again)
	}
	if got := s.Summary().Rules[3]; got.Paths != 2 || len(s.gitRs) != 11 {
		t.Errorf("second walk: rule %+v, %d git rules", got, len(s.gitRs))
	}
}

// TestNestedGitIgnoreOff: without GitIgnore (a publish, a pack) no
// .gitignore and no info/exclude applies, and a bad nested one is not read.
func TestNestedGitIgnoreOff(t *testing.T) {
	dir := gitTree(t)
	write(t, dir, "web/.gitignore", "\xff\n")
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := walk(t, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"secret.txt", "a.log", "vendor/m.go", "pkg/build/out.o", "pkg/x.tmp", "web/.gitignore"} {
		if !slices.Contains(kept, p) {
			t.Errorf("%s left out", p)
		}
	}
	if got := s.Summary().String(); got != "2 paths left out (.git/ ×1 default, .env ×1 default)" {
		t.Errorf("summary %q", got)
	}
}

func TestNestedGitIgnoreErrors(t *testing.T) {
	dir := gitTree(t)
	write(t, dir, "web/.gitignore", "ok\n\xff\n")
	s, err := Load(dir, Options{GitIgnore: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := walk(t, s, dir); err == nil || err.Error() != "web/.gitignore:2: not valid UTF-8 text" {
		t.Errorf("bad nested .gitignore: %v", err)
	}
	write(t, dir, "web/.gitignore", string(make([]byte, MaxFileBytes+1)))
	s, _ = Load(dir, Options{GitIgnore: true})
	if _, err := walk(t, s, dir); err == nil || err.Error() != "web/.gitignore: larger than 1048576 bytes" {
		t.Errorf("large nested .gitignore: %v", err)
	}
	write(t, dir, ".git/info/exclude", "\xff\n")
	if _, err := Load(dir, Options{GitIgnore: true}); err == nil || err.Error() != ".git/info/exclude:1: not valid UTF-8 text" {
		t.Errorf("bad info/exclude: %v", err)
	}
	if _, err := Load(dir, Options{GitIgnore: true, IncludeIgnored: true}); err != nil {
		t.Errorf("IncludeIgnored read info/exclude: %v", err)
	}
	// A symbolic link named .gitignore is not followed, as in git.
	os.Remove(filepath.Join(dir, ".git/info/exclude"))
	os.Remove(filepath.Join(dir, "web/.gitignore"))
	write(t, dir, "elsewhere", "*\n")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "web/.gitignore")); err != nil {
		t.Fatal(err)
	}
	s, _ = Load(dir, Options{GitIgnore: true})
	if kept, err := walk(t, s, dir); err != nil || !slices.Contains(kept, "web/x.tmp") {
		t.Errorf("symlinked .gitignore followed: %v %q", err, kept)
	}
}

// TestInfoExcludeWorktree: a linked work tree's .git is a file naming its
// git directory, whose commondir holds info/exclude.
func TestInfoExcludeWorktree(t *testing.T) {
	repo, tree := t.TempDir(), t.TempDir()
	write(t, repo, ".git/info/exclude", "secret.txt\n")
	write(t, repo, ".git/worktrees/wt/commondir", "../..\n")
	write(t, tree, ".git", "gitdir: "+filepath.Join(repo, ".git/worktrees/wt")+"\n")
	write(t, tree, "secret.txt", "x")
	write(t, tree, "index.html", "x")
	s, err := Load(tree, Options{GitIgnore: true})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := walk(t, s, tree)
	if err != nil || !slices.Equal(kept, []string{"index.html"}) {
		t.Errorf("kept %q, %v", kept, err)
	}
	if got := s.Summary().String(); got != "2 paths left out (secret.txt ×1 .git/info/exclude:1, .git ×1 default)" {
		t.Errorf("summary %q", got)
	}
	// A submodule's .git names its git directory, relative, with no commondir.
	write(t, repo, ".git/modules/m/info/exclude", "index.html\n")
	write(t, repo, "m/.git", "gitdir: ../.git/modules/m\n")
	write(t, repo, "m/index.html", "x")
	write(t, repo, "m/secret.txt", "x")
	s, _ = Load(filepath.Join(repo, "m"), Options{GitIgnore: true})
	if kept, err = walk(t, s, filepath.Join(repo, "m")); err != nil || !slices.Equal(kept, []string{"secret.txt"}) {
		t.Errorf("submodule: kept %q, %v", kept, err)
	}
}
