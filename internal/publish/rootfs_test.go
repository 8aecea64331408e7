package publish

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

func rootfsDep(t *testing.T, p *Publisher) *meta.Deployment {
	t.Helper()
	dep := &meta.Deployment{Name: "app", Kind: meta.KindRootfs}
	if err := p.Meta.CreateDeployment(t.Context(), dep, "tester"); err != nil {
		t.Fatal(err)
	}
	return dep
}

func rootfsBody(t *testing.T) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/bin/app", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 3},
		{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin"},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("app"))
		}
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

func TestPublishRootfs(t *testing.T) {
	p, static := newPublisher(t, 1)
	dep := rootfsDep(t, p)
	rt, err := ParseRuntime([]byte(`{"cmd":["/usr/bin/app","serve"],"env":{"A":"1"},"user":"1000:1000","workdir":"/srv","health_check":{"path":"/healthz"}}`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Publish(t.Context(), dep, bytes.NewReader(rootfsBody(t)), Options{Runtime: rt, Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.ArtifactManifest.Entrypoint != "/usr/bin/app serve" || v.ArtifactManifest.Files != 1 {
		t.Errorf("manifest %+v", v.ArtifactManifest)
	}
	got, err := p.Meta.GetVersion(t.Context(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(got.Runtime)
	if want := `{"cmd":["/usr/bin/app","serve"],"env":{"A":"1"},"workdir":"/srv","user":"1000:1000","port":8080,"health_check":{"path":"/healthz","interval":"10s","timeout":"2s"}}`; string(js) != want {
		t.Errorf("stored runtime %s\nwant %s", js, want)
	}
	rel, err := p.Meta.GetRelease(t.Context(), v.ArtifactSHA256)
	if err != nil || rel.Kind != meta.KindRootfs || rel.TreeSHA256 == "" {
		t.Fatalf("release %+v %v", rel, err)
	}
	// A static deployment takes no runtime settings; a rootfs upload with
	// a path leaving the tree is refused (a 400: internal/problem's table).
	if _, err := p.Publish(t.Context(), static, bytes.NewReader(siteTar(t, 1)), Options{Runtime: rt}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("static with a runtime: %v", err)
	}
	var bad bytes.Buffer
	tw := tar.NewWriter(&bad)
	tw.WriteHeader(&tar.Header{Name: "../etc/passwd", Typeflag: tar.TypeReg})
	tw.Close()
	if _, err := p.Publish(t.Context(), dep, &bad, Options{}); !errors.Is(err, release.ErrInvalid) {
		t.Errorf("a name with ..: %v", err)
	}
}

func TestParseRuntime(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, `{"cmd":[],"port":8080}`},
		{`{"port":80,"cmd":["x"]}`, `{"cmd":["x"],"port":80}`},
		{`{"health_check":{"path":"/h","interval":"30s","timeout":"1s"}}`, `{"cmd":[],"port":8080,"health_check":{"path":"/h","interval":"30s","timeout":"1s"}}`},
		{`{"port":70000}`, "port 70000"},
		{`{"env":{"PORT":"1"}}`, "env PORT"},
		{`{"env":{"1A":"x"}}`, "env name"},
		{`{"workdir":"srv"}`, "workdir"},
		{`{"cmd":[""]}`, "cmd word 0"},
		{`{"health_check":{"path":"h"}}`, "health_check path"},
		{`{"health_check":{"path":"/h","interval":"1s","timeout":"5s"}}`, "longer than its interval"},
		{`{"health_check":{"path":"/h","interval":"forever"}}`, "interval"},
		{`{"ports":1}`, "unknown field"},
		{`{} {}`, "data after"},
	} {
		rt, err := ParseRuntime([]byte(c.in))
		if err != nil {
			if !errors.Is(err, ErrBadRuntime) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Errorf("%s: %v, want an ErrBadRuntime with %q", c.in, err, c.want)
			}
			continue
		}
		js, _ := json.Marshal(rt)
		if string(js) != c.want {
			t.Errorf("%s: %s, want %s", c.in, js, c.want)
		}
	}
}

// FuzzParseRuntime: any input is a runtime that passes its own checks
// again, or a 400.
func FuzzParseRuntime(f *testing.F) {
	f.Add([]byte(`{"cmd":["nginx","-g","daemon off;"],"env":{"A":"b"},"port":80,"user":"www-data","workdir":"/","health_check":{"path":"/","interval":"5s","timeout":"1s"}}`))
	f.Add([]byte(`{"port":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rt, err := ParseRuntime(b)
		if err != nil {
			if !errors.Is(err, ErrBadRuntime) {
				t.Fatalf("not an ErrBadRuntime (400): %v", err)
			}
			return
		}
		js, _ := json.Marshal(rt)
		again, err := ParseRuntime(js)
		if err != nil {
			t.Fatalf("%s does not parse again: %v", js, err)
		}
		if js2, _ := json.Marshal(again); !bytes.Equal(js, js2) {
			t.Fatalf("%s became %s", js, js2)
		}
	})
}
