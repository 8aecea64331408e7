package guest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	ok := `{"hostname":"web-1","args":["/probe"],"env":["PORT=8080"],"user":"1000:1000","addr":"10.89.0.5/16","gateway":"10.89.0.1","grace_ms":5000}`
	c, err := ParseConfig([]byte(ok))
	if err != nil || c.User != "1000:1000" || c.GraceMS != 5000 {
		t.Fatalf("%+v, %v", c, err)
	}
	for _, bad := range []string{
		`{"hostname":"web-1","args":[]}`,
		`{"hostname":"Web_1","args":["/x"]}`,
		`{"hostname":"web-1","args":["/x"],"extra":1}`,
		`{"hostname":"web-1","args":["/x"],"addr":"10.89.0.5"}`,
		`{"hostname":"web-1","args":["/x"],"addr":"::1/64"}`,
		`{"hostname":"web-1","args":["/x"],"gateway":"10.89.0.1"}`,
		`{"hostname":"web-1","args":["/x"],"user":"www-data"}`,
		`{"hostname":"web-1","args":["/x"],"env":["=x"]}`,
		`{"hostname":"web-1","args":["/x"],"grace_ms":-1}`,
		`{"hostname":"web-1","args":["/x"]} {}`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]int{"0\n": 0, "3\n\x00\x00": 3, "137\n": 137} {
		if got, ok := ParseStatus([]byte(in)); !ok || got != want {
			t.Errorf("%q: %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "\x00\x00", "3", "256\n", "-1\n", "x\n"} {
		if _, ok := ParseStatus([]byte(in)); ok {
			t.Errorf("%q: accepted", in)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"hostname":"web-1","args":["/probe"],"addr":"10.89.0.5/16","gateway":"10.89.0.1","grace_ms":5000}`))
	f.Add([]byte(`{"hostname":"a","args":["x"],"user":"1:2","env":["A=b"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// What parses re-encodes to what parses the same.
		again, _ := json.Marshal(c)
		c2, err := ParseConfig(again)
		if err != nil || strings.Join(c2.Args, "\x00") != strings.Join(c.Args, "\x00") || c2.Addr != c.Addr {
			t.Fatalf("round trip: %+v → %+v, %v", c, c2, err)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("3\n"))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if code, ok := ParseStatus(b); ok && (code < 0 || code > 255) {
			t.Fatalf("code %d", code)
		}
	})
}

func FuzzModuleDeps(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	// A real module, when the guest kernel is here (scripts/guest-kernel).
	if b, err := os.ReadFile("/var/cache/cairn/guest-kernel/modules/kernel/lib/libcrc32c.ko"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		deps, soft, err := ModuleDeps(b)
		if err != nil {
			return
		}
		for _, d := range append(deps, soft...) {
			if d == "" || strings.ContainsAny(d, "-,\x00") {
				t.Fatalf("dependency %q", d)
			}
		}
	})
}
