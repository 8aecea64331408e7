package lease

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseOwner: an owner id parsed from any holder string names a host
// without '/', a positive PID and a nonce, and is the start of the holder;
// an owner never judges itself dead.
func FuzzParseOwner(f *testing.F) {
	for _, s := range []string{ProcessOwner(), ProcessOwner() + "/gc-0123", "h/1/n/publish-x", "upload-0123",
		"gc-0123", "h//n", "/1/n", "h/-1/n/x", "h/1/", "h/0x10/n", "h/1/n/a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseOwner(s)
		if !ok {
			return
		}
		if o.host == "" || strings.Contains(o.host, "/") || o.pid <= 0 || o.nonce == "" {
			t.Fatalf("parseOwner(%q) = %+v", s, o)
		}
		if id := fmt.Sprintf("%s/%d/%s", o.host, o.pid, o.nonce); s != id && !strings.HasPrefix(s, id+"/") {
			// a PID with a sign or leading zeros formats differently: it
			// must still be a number
			if _, err := fmt.Sscan(strings.SplitN(s, "/", 4)[1], new(int)); err != nil {
				t.Fatalf("parseOwner(%q) = %+v, not the start of the holder", s, o)
			}
		}
		if o.dead(o) {
			t.Fatalf("%+v judges itself dead", o)
		}
	})
}
