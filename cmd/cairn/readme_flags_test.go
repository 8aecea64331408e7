package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestREADMEListsServerFlags: the README's usage block of `cairn server`
// names every flag the command takes (hidden former names left out).
func TestREADMEListsServerFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	usage := regexp.MustCompile(`(?s)\ncairn server \[.*?\ncairn `).Find(readme)
	if usage == nil {
		t.Fatal("README.md has no usage block starting with `cairn server [`")
	}
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	cmd := a.serverCmd()
	n := 0
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" { // a former name kept working
			return
		}
		n++
		if !regexp.MustCompile(`\[--` + regexp.QuoteMeta(f.Name) + `[ =\]]`).Match(usage) {
			t.Errorf("README.md's cairn server usage lacks --%s (%s)", f.Name, strings.SplitN(f.Usage, "\n", 2)[0])
		}
	})
	if n < 30 {
		t.Fatalf("only %d server flags seen", n)
	}
}

// TestREADMEDocsExist: the documents the README names are in the
// repository (it pointed at ../shared/DESIGN.md, which a clone does not
// have), and neither it nor docs/ names DESIGN.md any more: the contract
// is docs/contract.md.
func TestREADMEDocsExist(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`\bdocs/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(string(readme), -1)
	if len(named) == 0 {
		t.Fatal("README.md names no document under docs/")
	}
	for _, p := range named {
		if _, err := os.Stat("../../" + p); err != nil {
			t.Errorf("README.md names %s: %v", p, err)
		}
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(docs, "../../README.md") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("DESIGN.md")); i >= 0 {
			t.Errorf("%s names DESIGN.md (line %d); the contract is docs/contract.md", p, bytes.Count(b[:i], []byte("\n"))+1)
		}
	}
}

// TestREADMEListsBuildFlags: the README's CLI block names the verbs of
// sources, builds and rebuilds and each of their flags.
func TestREADMEListsBuildFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## CLI\n\n```\n.*?\n```").Find(readme)
	if block == nil {
		t.Fatal("README.md has no CLI block")
	}
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	for _, c := range []struct {
		verb  string
		flags []string
	}{
		{"cairn publish --source", append([]string{"source", "build", "no-activate", "entrypoint"}, buildOnly...)},
		{"cairn builds NAME", nil},
		{"cairn logs --build ID", nil},
		{"cairn rebuild NAME N", []string{"host"}},
		{"cairn restore NAME N", nil},
		{"cairn deployment set NAME", []string{"source-retention-days"}},
	} {
		if !bytes.Contains(block, []byte(c.verb)) {
			t.Errorf("README.md's CLI block lacks %q", c.verb)
		}
		for _, f := range c.flags {
			if !regexp.MustCompile(`--` + regexp.QuoteMeta(f) + `[ =\]]`).Match(block) {
				t.Errorf("README.md's CLI block lacks --%s (of %s)", f, c.verb)
			}
		}
	}
	// Every flag of the new verbs is one listed above.
	for _, cmd := range []*cobra.Command{a.rebuildCmd(), a.restoreCmd(), a.buildsCmd()} {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "host" {
				t.Errorf("%s has --%s, not checked here", cmd.Name(), f.Name)
			}
		})
	}
}
