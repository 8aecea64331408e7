package unpack

import (
	"os"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/release"
)

// FuzzUnpackPaths unpacks hand-made releases (the packer's checks left
// out) whose entries come from the input, one per line: "d PATH", "f PATH",
// "l PATH TARGET" (symlink), "h PATH TARGET" (hard link), "p PATH" (fifo).
// Whatever the paths and targets, nothing outside the root changes, and a
// failed unpack leaves the root empty.
func FuzzUnpackPaths(f *testing.F) {
	if os.Getuid() != 0 {
		f.Skip("needs root")
	}
	f.Add("l etc /\nf etc/sentinel")
	f.Add("l a ../..\nl b a/..\nf b/x")
	f.Add("f a\nh b a\nl c /a\nh d c")
	f.Add("d a\nl a/b ../../..\nf a/b/c\np a/p")
	f.Add("f ../sentinel\nh x ../sentinel")
	f.Fuzz(func(t *testing.T, in string) {
		var es []release.Entry
		seen := map[string]bool{}
		for line := range strings.SplitSeq(in, "\n") {
			w := strings.Fields(line)
			if len(w) < 2 || len(es) > 20 || seen[w[1]] {
				continue
			}
			seen[w[1]] = true
			e := release.Entry{Path: w[1], Mode: 0o755}
			switch {
			case w[0] == "d":
				e.Type = release.TypeDir
			case w[0] == "f":
				e.Type, e.Mode, e.UID = release.TypeFile, 0o4755, 99
			case w[0] == "p":
				e.Type = release.TypeFifo
			case w[0] == "l" && len(w) > 2:
				e.Type, e.Mode, e.Link, e.UID = release.TypeSymlink, 0o777, w[2], 99
			case w[0] == "h" && len(w) > 2:
				e.Type, e.Mode, e.Link = release.TypeHardlink, 0, w[2]
			default:
				continue
			}
			es = append(es, e)
		}
		o := newOutside(t)
		for i := range es {
			es[i].Link = strings.ReplaceAll(es[i].Link, "SENTINEL", o.sentinel)
		}
		contents := map[string][]byte{}
		for _, e := range es {
			if e.Type == release.TypeFile {
				contents[e.Path] = []byte("pwned")
			}
		}
		art := craft(t, es, contents)
		_, err := unpackBytes(art, o.root, Options{})
		o.check(t)
		if err != nil {
			o.empty(t)
		}
	})
}
