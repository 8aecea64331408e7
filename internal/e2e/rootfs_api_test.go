package e2e

import (
	"archive/tar"
	"bytes"
	"net/url"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestRootfsAPI publishes a rootfs through the API as a zstd tar body with
// runtime settings, and checks that bad runtime settings and a hostile tar
// are 400 problems that leave no version.
func TestRootfsAPI(t *testing.T) {
	e := start(t)
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "app", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "usr/bin/app", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0, Size: 2})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin"})
	tw.WriteHeader(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3})
	tw.Close()
	enc, _ := zstd.NewWriter(nil)
	body := enc.EncodeAll(plain.Bytes(), nil)

	rt := url.QueryEscape(`{"cmd":["/usr/bin/app"],"port":9000,"env":{"MODE":"prod"},"health_check":{"path":"/up","interval":"5s"}}`)
	var v map[string]any
	if code, _ := e.do("POST", "/v1/deployments/app/versions?runtime="+rt, bytes.NewReader(body), &v); code != 201 {
		t.Fatalf("publish: %d %v", code, v)
	}
	r, _ := v["runtime"].(map[string]any)
	if r == nil || r["port"] != float64(9000) || v["artifact_manifest"].(map[string]any)["entrypoint"] != "/usr/bin/app" {
		t.Fatalf("version %v", v)
	}
	if hc := r["health_check"].(map[string]any); hc["interval"] != "5s" || hc["timeout"] != "2s" {
		t.Errorf("health_check %v", hc)
	}
	var rel map[string]any
	e.do("GET", "/v1/releases/"+v["artifact_sha256"].(string), nil, &rel)
	if rel["kind"] != "rootfs" {
		t.Errorf("release %v", rel)
	}

	for name, c := range map[string]struct {
		query string
		body  []byte
	}{
		"unknown runtime field": {"?runtime=" + url.QueryEscape(`{"prot":1}`), body},
		"port out of range":     {"?runtime=" + url.QueryEscape(`{"port":0.5}`), body},
		"absolute path": {"", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg})
			tw.Close()
			return b.Bytes()
		}()},
		"entry under an absolute symlink": {"", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/"})
			tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg})
			tw.Close()
			return b.Bytes()
		}()},
	} {
		var p map[string]any
		code, hdr := e.do("POST", "/v1/deployments/app/versions"+c.query, bytes.NewReader(c.body), &p)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %v", name, code, hdr.Get("Content-Type"), p)
		}
	}
	var vs struct {
		Versions []map[string]any `json:"versions"`
	}
	e.do("GET", "/v1/deployments/app/versions", nil, &vs)
	if len(vs.Versions) != 1 {
		t.Errorf("%d versions after refused uploads", len(vs.Versions))
	}
}
