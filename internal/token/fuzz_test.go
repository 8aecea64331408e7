package token_test

import (
	"testing"

	"github.com/cairnhq/cairn/internal/token"
)

// FuzzParseScope: a scope that parses prints back to itself, and only
// known kinds parse.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"admin", "read", "agent", "deploy:web", "push:a-b", "pull:x", "deploy:", "x:y:z", "deploy:a--b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := token.ParseScope(s)
		if err != nil {
			return
		}
		if sc.String() != s {
			t.Fatalf("ParseScope(%q).String() = %q", s, sc.String())
		}
		switch sc.Kind {
		case token.Admin, token.Read, token.Agent, token.Deploy, token.Push, token.Pull:
		default:
			t.Fatalf("ParseScope(%q): kind %q", s, sc.Kind)
		}
	})
}

// FuzzFromHeader: never panics, and a secret found is never empty.
func FuzzFromHeader(f *testing.F) {
	for _, s := range []string{"Bearer x", "basic eDp5", "Basic", "bEaReR  y ", "Basic ===="} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, h string, basic bool) {
		s, ok := token.FromHeader(h, basic)
		if ok != (s != "") {
			t.Fatalf("FromHeader(%q) = %q, %v", h, s, ok)
		}
	})
}
