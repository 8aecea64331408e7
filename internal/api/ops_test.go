package api

import (
	"strings"
	"testing"
)

// TestOpsNameRoutes: every operation named for the log is a route of the
// API, and every route that changes something has a name.
func TestOpsNameRoutes(t *testing.T) {
	a := New(Config{})
	seen := map[string]bool{}
	for _, p := range a.patterns {
		seen[p] = true
		method, _, _ := strings.Cut(p, " ")
		if method != "GET" && method != "HEAD" && strings.Contains(p, " ") && ops[p] == "" {
			t.Errorf("route %s changes something but has no name in ops", p)
		}
	}
	for p := range ops {
		if !seen[p] {
			t.Errorf("ops names %s, which is not a route", p)
		}
	}
}
