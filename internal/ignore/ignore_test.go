package ignore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRules(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, File, "# comment\n*.map\n!keep.map\n\n/drafts/\r\n!.DS_Store\n")
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel   string
		isDir bool
		skip  bool
	}{
		{".git", true, true}, {"sub/.git", true, true}, {".git", false, false},
		{".env", false, true}, {".env.local", false, true}, {"a/.env", false, true}, {"env", false, false},
		{".DS_Store", false, false}, // re-included by the .cairnignore
		{".cairnignore", false, true},
		{"a.map", false, true}, {"js/b.map", false, true}, {"keep.map", false, false},
		{"drafts", true, true}, {"x/drafts", true, false}, {"drafts", false, false},
		{".well-known", true, false}, {"index.html", false, false},
	} {
		if got, err := s.Skip(tc.rel, filepath.Join(dir, tc.rel), tc.isDir); got != tc.skip || err != nil {
			t.Errorf("Skip(%q, dir=%v) = %v, %v; want %v", tc.rel, tc.isDir, got, err, tc.skip)
		}
	}
	sum := s.Summary()
	if sum.Paths != 9 || len(sum.Rules) != 6 || sum.Rules[0].Rule != ".git/" || sum.Rules[5] != (RuleCount{"/drafts/", ".cairnignore:5", 1}) {
		t.Errorf("summary %+v", sum)
	}
	if got := sum.String(); got != "9 paths left out (.git/ ×2 default, .env ×2 default, .env.* ×1 default, .cairnignore ×1 default, *.map ×2 .cairnignore:2, /drafts/ ×1 .cairnignore:5)" {
		t.Errorf("String() = %q", got)
	}
}

func TestIncludeIgnored(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, File, "*\n")
	s, err := Load(dir, Options{IncludeIgnored: true})
	if err != nil {
		t.Fatal(err)
	}
	if skip, _ := s.Skip(".env", "", false); skip {
		t.Error("--include-ignored left .env out")
	}
	if got := s.Summary(); got.Paths != 0 || got.String() != "0 paths left out" {
		t.Errorf("summary %+v", got)
	}
}

// TestGitIgnore: with GitIgnore the root .gitignore applies too, before the
// defaults (a "!" line of it re-includes neither .git/ nor .env) and
// before the .cairnignore (whose "!" lines win); without it, it does not.
func TestGitIgnore(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, GitIgnoreFile, "# build output\nnode_modules/\n/dist\n*.log\n!.git/\n!.env\n")
	write(t, dir, File, "!keep.log\n")
	s, err := Load(dir, Options{GitIgnore: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel   string
		isDir bool
		skip  bool
	}{
		{"node_modules", true, true}, {"web/node_modules", true, true},
		{"dist", true, true}, {"web/dist", true, false},
		{"a.log", false, true}, {"keep.log", false, false},
		{".git", true, true}, {".env", false, true},
		{GitIgnoreFile, false, false}, {"src/main.go", false, false},
	} {
		if got, err := s.Skip(tc.rel, filepath.Join(dir, tc.rel), tc.isDir); got != tc.skip || err != nil {
			t.Errorf("Skip(%q, dir=%v) = %v, %v; want %v", tc.rel, tc.isDir, got, err, tc.skip)
		}
	}
	sum := s.Summary()
	if sum.Rules[0] != (RuleCount{"node_modules/", ".gitignore:2", 2}) {
		t.Errorf("summary %+v", sum)
	}
	plain, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if skip, _ := plain.Skip("node_modules", filepath.Join(dir, "node_modules"), true); skip {
		t.Error("without GitIgnore the .gitignore applied")
	}
	write(t, dir, GitIgnoreFile, "\xff\n")
	if _, err := Load(dir, Options{GitIgnore: true}); err == nil || err.Error() != ".gitignore:1: not valid UTF-8 text" {
		t.Errorf("bad .gitignore: %v", err)
	}
	if _, err := Load(dir, Options{GitIgnore: true, IncludeIgnored: true}); err != nil {
		t.Errorf("IncludeIgnored read the .gitignore: %v", err)
	}
}

func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "cairn-data")
	os.Mkdir(data, 0o700)
	if err := MarkDataDir(data); err != nil {
		t.Fatal(err)
	}
	if err := MarkDataDir(data); err != nil { // again: no change
		t.Fatal(err)
	}
	s, err := Load(dir, Options{IncludeIgnored: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listed("cairn-data", []string{Marker, "blobs"}); !errors.Is(err, ErrDataDir) {
		t.Errorf("marked: %v", err)
	}
	if err := s.Listed("old", []string{"token", "cairn.db", "blobs"}); !errors.Is(err, ErrDataDir) {
		t.Errorf("unmarked: %v", err)
	}
	if err := s.Listed("site", []string{"token", "index.html"}); err != nil {
		t.Errorf("a site with a file named token: %v", err)
	}
	// A data directory that a rule leaves out is refused too.
	write(t, dir, File, "cairn-data/\n")
	if s, err = Load(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if skip, err := s.Skip("cairn-data", data, true); !skip || !errors.Is(err, ErrDataDir) {
		t.Errorf("ignored data dir: %v, %v", skip, err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, File, "ok\n\xff\xfe\n")
	if _, err := Load(dir, Options{}); err == nil || err.Error() != ".cairnignore:2: not valid UTF-8 text" {
		t.Errorf("bad UTF-8: %v", err)
	}
	os.Remove(filepath.Join(dir, File))
	os.Mkdir(filepath.Join(dir, File), 0o755)
	if _, err := Load(dir, Options{}); err == nil {
		t.Error("a directory named .cairnignore loaded")
	}
}

// FuzzParse: any .cairnignore either fails with an error or gives rules that
// match any path without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"*.map\n!keep.map\n", "/drafts/\n# c\n\n", "**/x/**\n\\#a\n", "a\\ \n[a-z]?\n", "!\n/\n"} {
		f.Add(s, "a/b.map", true)
	}
	f.Fuzz(func(t *testing.T, body, path string, isDir bool) {
		rules, err := parse(File, []byte(body), nil)
		if err != nil {
			return
		}
		nested, _ := parse("a/"+GitIgnoreFile, []byte(body), []string{"a"})
		s := &Set{rules: rules, gitRs: nested, counts: map[*rule]int{}}
		if path == "" {
			return
		}
		s.skip(path, isDir)
		_ = s.Summary().String()
	})
}
