// Package pebbletest runs Pebble, an ACME server for tests, on loopback:
// the certificate manager's tests and the end-to-end HTTPS test share it.
package pebbletest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuf collects a process's output.
type SyncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Count is how many times sub occurs in the output.
func (s *SyncBuf) Count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

func (s *SyncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort is a loopback port nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Pebble is a running Pebble.
type Pebble struct {
	Dir       string         // ACME directory URL (cairn's --acme-ca)
	Minica    string         // PEM file of the root of Pebble's own HTTPS (cairn's --acme-root)
	TLSRoots  *x509.CertPool // the same root
	Issuer    *x509.CertPool // root of the certificates it issues
	IssuerPEM []byte         // the same root, PEM (curl --cacert)
	Log       *SyncBuf
}

// Orders is how many ACME orders Pebble has taken.
func (p *Pebble) Orders() int { return p.Log.Count("Added order") }

func buildTools(t testing.TB) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/",
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, out)
	}
	return bin
}

func modDir(t testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("go list pebble: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func start(t testing.TB, name string, out io.Writer, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = out, out, append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// Start builds and runs Pebble (a Go tool dependency of the module) and
// pebble-challtestsrv as its DNS server, answering 127.0.0.1 for every
// name, so that Pebble validates HTTP-01 challenges on httpPort and
// TLS-ALPN-01 on tlsPort of 127.0.0.1; it issues certificates valid for
// validity. Both stop when the test ends. Skipped in -short.
func Start(t testing.TB, httpPort, tlsPort int, validity time.Duration) *Pebble {
	if testing.Short() {
		t.Skip("Pebble: not in -short")
	}
	bin, src, work := buildTools(t), modDir(t), t.TempDir()
	dns, dnsMgmt := FreePort(t), FreePort(t)
	start(t, filepath.Join(bin, "pebble-challtestsrv"), io.Discard, nil,
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dns), "-management", "127.0.0.1:"+strconv.Itoa(dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	acme, mgmt := FreePort(t), FreePort(t)
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(acme),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":             filepath.Join(src, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(src, "test/certs/localhost/key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "short-lived", "validityPeriod": int(validity.Seconds())}},
	}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Pebble{Dir: fmt.Sprintf("https://127.0.0.1:%d/dir", acme), Log: &SyncBuf{}, Minica: filepath.Join(src, "test/certs/pebble.minica.pem")}
	start(t, filepath.Join(bin, "pebble"), p.Log,
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", conf, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dns))
	minica, err := os.ReadFile(p.Minica)
	if err != nil {
		t.Fatal(err)
	}
	p.TLSRoots = x509.NewCertPool()
	p.TLSRoots.AppendCertsFromPEM(minica)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.TLSRoots}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
		if err == nil && resp.StatusCode == 200 {
			pem, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.IssuerPEM = pem
			p.Issuer = x509.NewCertPool()
			if !p.Issuer.AppendCertsFromPEM(pem) {
				t.Fatalf("pebble root: %q", pem)
			}
			return p
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
