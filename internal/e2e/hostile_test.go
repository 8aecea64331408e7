package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/server"
)

type hdr struct {
	name, link string
	typ        byte
	body       string
}

func rawTar(entries ...hdr) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		th := &tar.Header{Name: h.name, Linkname: h.link, Typeflag: h.typ, Mode: 0o644}
		if h.typ == tar.TypeReg {
			th.Size = int64(len(h.body))
		}
		tw.WriteHeader(th)
		tw.Write([]byte(h.body))
	}
	tw.Close()
	return buf.Bytes()
}

func file(name, body string) hdr { return hdr{name: name, typ: tar.TypeReg, body: body} }

// TestHostileUploads: every hostile upload gets a 4xx problem+json and
// leaves no version, release, blob or staging file behind; the server keeps
// serving.
func TestHostileUploads(t *testing.T) {
	e := start(t, func(c *server.Config) { c.MaxFiles, c.MaxBytes = 50, 1<<20 })
	e.publish("good", site("ok"))
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "demo"}), nil)
	good := rawTar(file("index.html", "hello"), file("b.txt", strings.Repeat("b", 4000)))
	many := make([]hdr, 60)
	for i := range many {
		many[i] = file(fmt.Sprintf("f%d.txt", i), "x")
	}
	cases := []struct {
		name   string
		body   []byte
		status int
		auth   bool
	}{
		{"absolute path", rawTar(file("/etc/passwd", "x")), 400, true},
		{"dotdot", rawTar(file("../../escape.txt", "x")), 400, true},
		{"symlink out of the tree", rawTar(hdr{name: "l", typ: tar.TypeSymlink, link: "../../../etc/passwd"}), 400, true},
		{"hard link", rawTar(file("a", "x"), hdr{name: "b", typ: tar.TypeLink, link: "a"}), 400, true},
		{"device node", rawTar(hdr{name: "null", typ: tar.TypeChar}), 400, true},
		{"duplicate path", rawTar(file("a", "x"), file("a", "y")), 400, true},
		{"truncated stream", good[:700], 400, true},
		{"not a tar", []byte(strings.Repeat("this is not a tar archive\n", 100)), 400, true},
		{"too many files", rawTar(many...), 413, true},
		{"too many bytes", rawTar(file("big.bin", strings.Repeat("z", 2<<20))), 413, true},
		{"unauthenticated", good, 401, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.api+"/v1/deployments/demo/versions", bytes.NewReader(c.body))
			if c.auth {
				req.Header.Set("Authorization", "Bearer "+e.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			if !bytes.Contains(b, []byte(`"type":"https://cairn.dev/problems/`)) || !bytes.Contains(b, []byte(`"detail"`)) {
				t.Fatalf("not a problem body: %s", b)
			}
		})
	}
	var list struct{ Versions []any }
	e.do("GET", "/v1/deployments/demo/versions", nil, &list)
	if len(list.Versions) != 0 {
		t.Fatalf("hostile uploads left %d versions", len(list.Versions))
	}
	if n := e.blobCount(); n != 1 {
		t.Fatalf("%d blobs stored, want only the good site's", n)
	}
	stage, _ := os.ReadDir(filepath.Join(e.data, "staging"))
	if len(stage) != 0 {
		t.Fatalf("staging holds %d leftovers", len(stage))
	}
	if r, b := e.get("good.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>ok</h1>" {
		t.Fatalf("server stopped serving: %d %q", r.StatusCode, b)
	}
	v := e.publish("demo", map[string]string{"index.html": "fine"})
	if v["version_number"].(float64) != 1 {
		t.Fatalf("first good version is number %v", v["version_number"])
	}
}
