// Package pebbletest runs Pebble, an ACME server for tests, on loopback:
// the certificate manager's tests and the end-to-end HTTPS test share it
// (Start), and so does the HTTPS benchmark (Run).
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
	"runtime"
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
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
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

// Start is Run for a test: in a temporary directory, Pebble's output
// kept in p.Log only, both processes stopped when the test ends. Skipped
// in -short.
func Start(t testing.TB, httpPort, tlsPort int, validity time.Duration) *Pebble {
	t.Helper()
	if testing.Short() {
		t.Skip("Pebble: not in -short")
	}
	p, stop, err := Run(t.TempDir(), httpPort, tlsPort, validity, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return p
}

// Run builds Pebble (a Go tool dependency of the module) into work and
// runs it with pebble-challtestsrv as its DNS server, answering 127.0.0.1
// for every name, so that Pebble validates HTTP-01 challenges on httpPort
// and TLS-ALPN-01 on tlsPort of 127.0.0.1; it issues certificates valid
// for validity. Pebble's output goes to p.Log and, with pebble-challtestsrv's,
// to out if it is not nil. stop kills both processes; on an error
// nothing is left running.
func Run(work string, httpPort, tlsPort int, validity time.Duration, out io.Writer) (p *Pebble, stop func(), err error) {
	if out == nil {
		out = io.Discard
	}
	_, self, _, _ := runtime.Caller(0)
	mod := filepath.Dir(self) // go build and go list run in cairn's module
	if _, err := os.Stat(mod); err != nil {
		mod = ""
	}
	bin := filepath.Join(work, "pebble-bin")
	build := exec.Command("go", "build", "-o", bin+"/",
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv")
	build.Dir = mod
	if b, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go build pebble: %v\n%s", err, b)
	}
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
	list.Dir = mod
	b, err := list.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list pebble: %w", err)
	}
	src := strings.TrimSpace(string(b))
	var ports [4]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	dns, dnsMgmt, acme, mgmt := ports[0], ports[1], ports[2], ports[3]

	var procs []*exec.Cmd
	stop = func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	}
	start := func(out io.Writer, env []string, name string, args ...string) error {
		c := exec.Command(name, args...)
		c.Stdout, c.Stderr, c.Env = out, out, append(os.Environ(), env...)
		if err := c.Start(); err != nil {
			return err
		}
		procs = append(procs, c)
		return nil
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if err := start(out, nil, filepath.Join(bin, "pebble-challtestsrv"),
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dns), "-management", "127.0.0.1:"+strconv.Itoa(dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""); err != nil {
		return nil, nil, err
	}
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
			"description": "valid for " + validity.String(), "validityPeriod": int(validity.Seconds())}},
	}
	b, _ = json.Marshal(cfg)
	conf := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		return nil, nil, err
	}
	p = &Pebble{Dir: fmt.Sprintf("https://127.0.0.1:%d/dir", acme), Log: &SyncBuf{}, Minica: filepath.Join(src, "test/certs/pebble.minica.pem")}
	if err := start(io.MultiWriter(p.Log, out), []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		filepath.Join(bin, "pebble"), "-config", conf, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dns)); err != nil {
		return nil, nil, err
	}
	minica, err := os.ReadFile(p.Minica)
	if err != nil {
		return nil, nil, err
	}
	p.TLSRoots = x509.NewCertPool()
	p.TLSRoots.AppendCertsFromPEM(minica)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.TLSRoots}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
		if err == nil && resp.StatusCode == 200 {
			pem, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.IssuerPEM = pem
			p.Issuer = x509.NewCertPool()
			if !p.Issuer.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("pebble root: %q", pem)
			}
			return p, stop, nil
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("pebble did not start: %v\n%s", err, p.Log)
		}
	}
}
