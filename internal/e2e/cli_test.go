package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestQuickstartBinary follows the README with the real binary: start the
// server on its embedded default, publish a directory, fetch it from the edge
// by host name, and check that `cairn pack` of the same tree names the same
// release.
func TestQuickstartBinary(t *testing.T) {
	dir := t.TempDir()
	bin := cairnBinary(t)
	api, edge := freeAddr(t), freeAddr(t)
	srv := exec.Command(bin, "server", "--api-addr", api, "--edge-addr", edge)
	srv.Dir = dir // default data dir ./cairn-data
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", api); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("server did not listen in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	site := filepath.Join(dir, "site")
	os.MkdirAll(filepath.Join(site, "css"), 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello from cairn</h1>\n"), 0o644)
	os.WriteFile(filepath.Join(site, "css", "a.css"), []byte("body{}"), 0o644)

	cli := func(args ...string) []byte {
		t.Helper()
		c := exec.Command(bin, append(args, "--api", "http://"+api)...)
		c.Dir = dir
		out, err := c.Output()
		if err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	var v struct {
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	if err := json.Unmarshal(cli("publish", "./site", "--deployment", "demo", "--json"), &v); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+edge+"/", nil)
	req.Host = "demo.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<h1>hello from cairn</h1>\n" {
		t.Fatalf("edge: %d %q", resp.StatusCode, body)
	}
	var packed struct {
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(cli("pack", "./site", "-o", filepath.Join(dir, "r.tar.zst"), "--json"), &packed); err != nil {
		t.Fatal(err)
	}
	if packed.SHA256 != v.ArtifactSHA256 {
		t.Fatalf("cairn pack gives %s, the server stored %s", packed.SHA256, v.ArtifactSHA256)
	}
	var vs []map[string]any
	if err := json.Unmarshal(cli("versions", "demo", "--json"), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("versions: %v %v", vs, err)
	}
}
