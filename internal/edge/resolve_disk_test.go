package edge

import "testing"

// TestLinksResolveAsOnDisk: the edge follows a link the way the kernel
// does once the release is extracted: "l/../g", where l links to the
// directory e/f, is e/g (the physical parent of e/f), not d/g (the text
// before it).
func TestLinksResolveAsOnDisk(t *testing.T) {
	v := newEnv(t, Config{})
	v.publish(v.deploy("disk"), map[string]string{
		"index.html": "home",
		"e/f/":       "",
		"e/g":        "e/g",
		"d/g":        "d/g",
		"d/l":        "symlink:../e/f",
		"d/m":        "symlink:l/../g",
		"d/n":        "symlink:l/../../index.html",
	}, true)
	for p, want := range map[string]string{"/d/m": "e/g", "/d/n": "home", "/d/l/../g": "d/g"} {
		if _, body := v.mustGet("disk.localhost", p, 200); string(body) != want {
			t.Errorf("%s: %q, want %q", p, body, want)
		}
	}
}
