package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/certs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// The tests run a real ACME server on loopback: Pebble (a Go tool
// dependency, built here), with pebble-challtestsrv as its DNS server
// answering 127.0.0.1 for every name, validating the challenges against
// the test's own edge listeners.

const registered = "www.example.test"

// domains is a registry of one domain.
type domains struct{ lookups atomic.Int64 }

func (d *domains) GetDomain(_ context.Context, host string) (*meta.Domain, error) {
	d.lookups.Add(1)
	if host == registered {
		return &meta.Domain{Hostname: host, DeploymentID: "dep_1"}, nil
	}
	return nil, meta.ErrNotFound
}

// syncBuf collects a process's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pebble is a running Pebble.
type pebble struct {
	dir      string // ACME directory URL
	tlsRoots *x509.CertPool
	issuer   *x509.CertPool // roots of the certificates it issues
	log      *syncBuf
}

// orders is how many ACME orders Pebble has taken.
func (p *pebble) orders() int { return p.log.count("Added order") }

func buildTools(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/",
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, out)
	}
	return bin
}

func modDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("go list pebble: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func start(t *testing.T, name string, out io.Writer, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = out, out, append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// startPebble runs Pebble validating challenges on httpPort and tlsPort,
// issuing certificates valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	if testing.Short() {
		t.Skip("Pebble: not in -short")
	}
	bin, src, work := buildTools(t), modDir(t), t.TempDir()
	dns, dnsMgmt := freePort(t), freePort(t)
	start(t, filepath.Join(bin, "pebble-challtestsrv"), io.Discard, nil,
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dns), "-management", "127.0.0.1:"+strconv.Itoa(dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	acme, mgmt := freePort(t), freePort(t)
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
	p := &pebble{dir: fmt.Sprintf("https://127.0.0.1:%d/dir", acme), log: &syncBuf{}}
	start(t, filepath.Join(bin, "pebble"), p.log,
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"-config", conf, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dns))
	minica, err := os.ReadFile(filepath.Join(src, "test/certs/pebble.minica.pem"))
	if err != nil {
		t.Fatal(err)
	}
	p.tlsRoots = x509.NewCertPool()
	p.tlsRoots.AppendCertsFromPEM(minica)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.tlsRoots}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
		if err == nil && resp.StatusCode == 200 {
			pem, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.issuer = x509.NewCertPool()
			if !p.issuer.AppendCertsFromPEM(pem) {
				t.Fatalf("pebble root: %q", pem)
			}
			return p
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// edgeProc is one edge process: its own store handle on the shared
// database, its own Manager and listeners.
type edgeProc struct {
	httpLn, tlsLn net.Listener
	mgr           *certs.Manager
	obtaining     atomic.Int64 // first issuances (not renewals) this process began
}

func listenOn(t *testing.T, port int) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func newEdge(t *testing.T, db string, p *pebble, d *domains, httpLn, tlsLn net.Listener) *edgeProc {
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &edgeProc{httpLn: httpLn, tlsLn: tlsLn}
	e.mgr, err = certs.New(certs.Config{Certs: st, Domains: d, CA: p.dir, Email: "ops@example.test",
		Roots: p.tlsRoots, HTTPAddr: httpLn.Addr().String(), TLSAddr: tlsLn.Addr().String(),
		RenewalWindow: 0.4, RenewCheck: time.Second,
		OnEvent: func(_ context.Context, ev string, data map[string]any) error {
			if ev == "cert_obtaining" && data["renewal"] != true { // a first issuance
				e.obtaining.Add(1)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.mgr.Stop)
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.Host, r.Proto)
	})
	plain := &http.Server{Handler: e.mgr.Handler(site)}
	secure := &http.Server{Handler: site, TLSConfig: e.mgr.TLSConfig()}
	go plain.Serve(httpLn)
	go secure.Serve(tls.NewListener(tlsLn, secure.TLSConfig))
	t.Cleanup(func() { plain.Close(); secure.Close() })
	return e
}

// get is `curl --cacert pebble.pem --resolve host:port:127.0.0.1`: it
// returns the leaf certificate served for host and the body.
func get(t *testing.T, e *edgeProc, roots *x509.CertPool, host string) (*x509.Certificate, string, error) {
	addr := e.tlsLn.Addr().String()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, port, _ := net.SplitHostPort(addr)
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+host+":"+port+"/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.TLS.PeerCertificates[0], string(b), nil
}

func TestPebble(t *testing.T) {
	httpPort, tlsPort := freePort(t), freePort(t)
	p := startPebble(t, httpPort, tlsPort, time.Minute)
	db := filepath.Join(t.TempDir(), "meta.db")
	d := &domains{}
	a := newEdge(t, db, p, d, listenOn(t, httpPort), listenOn(t, tlsPort))

	// Refusal: an unregistered name gets a TLS alert, and no order.
	_, _, err := get(t, a, p.issuer, "evil.example.test")
	var alert tls.AlertError
	if err == nil || !(errors.As(err, &alert) || strings.Contains(err.Error(), "tls: ")) {
		t.Fatalf("unregistered name: err = %v, want a TLS alert", err)
	}
	if n := p.orders(); n != 0 || a.obtaining.Load() != 0 {
		t.Fatalf("unregistered name: %d orders, %d obtaining events; want none", n, a.obtaining.Load())
	}

	// Issuance: the registered domain gets a Pebble-issued certificate,
	// over HTTP/2.
	leaf, body, err := get(t, a, p.issuer, registered)
	if err != nil {
		t.Fatalf("registered name: %v\npebble:\n%s", err, p.log)
	}
	if leaf.VerifyHostname(registered) != nil || !strings.HasPrefix(body, "hello "+registered+":") || !strings.HasSuffix(body, " over HTTP/2.0") {
		t.Fatalf("cert for %v, body %q", leaf.DNSNames, body)
	}
	if n := p.orders(); n != 1 {
		t.Fatalf("%d orders after one issuance, want 1", n)
	}

	// A second edge process on the same database serves the same
	// certificate without an order of its own.
	b := newEdge(t, db, p, d, listenOn(t, 0), listenOn(t, 0))
	leafB, _, err := get(t, b, p.issuer, registered)
	if err != nil {
		t.Fatal(err)
	}
	if !leafB.Equal(leaf) || p.orders() != 1 || b.obtaining.Load() != 0 {
		t.Fatalf("second process: same cert %v, %d orders, %d obtaining", leafB.Equal(leaf), p.orders(), b.obtaining.Load())
	}

	// Renewal: a one-minute certificate is renewed in the last 40% of its
	// life (by either process: they share the lock), before it expires.
	deadline := leaf.NotAfter
	for {
		cur, _, err := get(t, a, p.issuer, registered)
		if err != nil {
			t.Fatal(err)
		}
		if !cur.Equal(leaf) {
			if !cur.NotAfter.After(leaf.NotAfter) || time.Now().After(leaf.NotAfter) {
				t.Fatalf("renewed cert expires %v (old %v), now %v", cur.NotAfter, leaf.NotAfter, time.Now())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not renewed before expiry %v; pebble:\n%s", leaf.NotAfter, p.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := p.orders(); n != 2 {
		t.Fatalf("%d orders after a renewal, want 2", n)
	}
}
