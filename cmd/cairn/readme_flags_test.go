package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

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
