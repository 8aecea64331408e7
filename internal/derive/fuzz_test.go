package derive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzRelink: whatever tar stream comes in, relink does not panic, and
// what it writes is a tar stream in which every hard link names a regular
// file written before it.
func FuzzRelink(f *testing.F) {
	seed := func(hs ...tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			tw.WriteHeader(&h)
			if h.Size > 0 {
				tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		tw.Close()
		return b.Bytes()
	}
	f.Add(seed(tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "b"}, tar.Header{Name: "b", Typeflag: tar.TypeReg, Size: 3}))
	f.Add(seed(tar.Header{Name: "c", Typeflag: tar.TypeLink, Linkname: "a"}, tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "b"},
		tar.Header{Name: "b", Typeflag: tar.TypeReg, Size: 1}, tar.Header{Name: "d", Typeflag: tar.TypeLink, Linkname: "e"}))
	f.Add(seed(tar.Header{Name: "dir", Typeflag: tar.TypeDir}, tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "dir"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := relink(bytes.NewReader(in), &out); err != nil {
			return
		}
		tr := tar.NewReader(&out)
		files := map[string]bool{}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("relink wrote an unreadable stream: %v", err)
			}
			switch h.Typeflag {
			case tar.TypeLink:
				if !files[h.Linkname] {
					t.Fatalf("link %q to %q, which is not a file written before it", h.Name, h.Linkname)
				}
				files[h.Name] = true
			case tar.TypeReg, tar.TypeRegA:
				files[h.Name] = true
			default:
				delete(files, h.Name)
			}
		}
	})
}

// FuzzRuntimeOf: any image config gives a runtime with a valid port.
func FuzzRuntimeOf(f *testing.F) {
	f.Add([]byte(`{"config":{"Entrypoint":["/a"],"Cmd":["b"],"Env":["A=1","B"],"ExposedPorts":{"80/tcp":{},"x":{},"53/udp":{}}}}`))
	f.Add([]byte(`{"config":{"ExposedPorts":{"99999/tcp":{},"-1":{}}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		cf, err := v1.ParseConfigFile(bytes.NewReader(in))
		if err != nil {
			return
		}
		rt := RuntimeOf(cf)
		if rt.Port < 1 || rt.Port > 65535 || rt.Workdir == "" || rt.Env == nil {
			t.Fatalf("runtime %+v", rt)
		}
	})
}
