package api

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestContractListsRoutes: docs/contract.md's route list has a line
// "METHOD /path" for every route this package serves (a.handle calls;
// path parameters may be named differently, e.g. {sha} and {sha256}).
func TestContractListsRoutes(t *testing.T) {
	contract, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z0-9_]+\}`)
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(GET|POST|PUT|PATCH|DELETE) +(/v1/\S+)`).FindAllSubmatch(contract, -1) {
		path := regexp.MustCompile(`[?,].*$`).ReplaceAllString(string(m[2]), "")
		listed[string(m[1])+" "+param.ReplaceAllString(path, "{}")] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	handle := regexp.MustCompile(`a\.handle\("([A-Z]+) (/[^"]*)"`)
	n := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range handle.FindAllSubmatch(src, -1) {
			n++
			if key := string(m[1]) + " " + param.ReplaceAllString(string(m[2]), "{}"); !listed[key] {
				t.Errorf("docs/contract.md does not list %s %s (%s)", m[1], m[2], f)
			}
		}
	}
	if n < 40 {
		t.Fatalf("found only %d routes", n)
	}
}
