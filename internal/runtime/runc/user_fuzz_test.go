package runc

import (
	"fmt"
	"testing"
)

// FuzzParseUser: "uid[:gid]" never panics, and what it accepts prints
// back to itself (names are never resolved).
func FuzzParseUser(f *testing.F) {
	for _, s := range []string{"", "0", "1000:1000", "33:0", "www-data", "1:", ":1", "4294967296", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uid, gid, err := parseUser(s)
		if err != nil || s == "" {
			return
		}
		if got := fmt.Sprintf("%d:%d", uid, gid); got != s && fmt.Sprint(uid) != s {
			if _, _, err := parseUser(got); err != nil {
				t.Fatalf("%q parsed to %s, which does not parse", s, got)
			}
		}
	})
}
