package main

import (
	"bytes"
	"os"
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
