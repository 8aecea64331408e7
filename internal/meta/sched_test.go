package meta

import (
	"encoding/json"
	"testing"
)

func TestRegions(t *testing.T) {
	for _, tc := range []struct{ in, out string }{{"spread", "spread"}, {"eu=2,us=1", "eu=2,us=1"}, {"us=1, eu=0", "eu=0,us=1"}} {
		r, err := ParseRegions(tc.in)
		if err != nil || r.String() != tc.out {
			t.Errorf("ParseRegions(%q) = %v, %v", tc.in, r, err)
		}
		b, _ := json.Marshal(r)
		var back Regions
		if err := json.Unmarshal(b, &back); err != nil || back.String() != tc.out {
			t.Errorf("round trip of %s: %v %v", b, back.String(), err)
		}
	}
	for _, bad := range []string{"", "eu", "eu=x", "eu=-1", "eu=1,eu=2", "=1", "everywhere"} {
		if _, err := ParseRegions(bad); err == nil {
			t.Errorf("ParseRegions(%q) accepted", bad)
		}
	}
}

// FuzzRegions: the JSON and CLI forms never panic, and what they accept
// round-trips.
func FuzzRegions(f *testing.F) {
	for _, s := range []string{`"spread"`, `{"eu":2}`, `[]`, `"x"`, `{"":1}`, "eu=2,us=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Regions
		if json.Unmarshal([]byte(s), &r) == nil {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back Regions
			if err := json.Unmarshal(b, &back); err != nil || back.String() != r.String() {
				t.Fatalf("round trip of %q: %s → %v %v", s, b, back.String(), err)
			}
		}
		if p, err := ParseRegions(s); err == nil {
			if q, err := ParseRegions(p.String()); err != nil || q.String() != p.String() {
				t.Fatalf("ParseRegions(%q).String() = %q does not parse back: %v", s, p.String(), err)
			}
		}
	})
}
