package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/certs/pebbletest"
)

// TestHTTPSPebble: two `cairn server` processes on one data dir, each with
// --edge-tls-addr and Pebble (an ACME server on loopback) as --acme-ca. A
// published site's custom domain answers over HTTPS, checked with
// `curl --cacert pebble.pem --resolve`, with a certificate Pebble issued
// on the first request; the second (edge-only) process serves the same
// certificate without an order of its own; an unregistered name gets a
// TLS alert and makes no order. Renewal is in internal/certs TestPebble.
func TestHTTPSPebble(t *testing.T) {
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	// A week: Pebble's renewal window (ARI) is two days around two thirds
	// of the lifetime, clamped to the lifetime; for a certificate shorter
	// than 36 h it starts at issuance, and certmagic may renew at once.
	p := pebbletest.Start(t, httpPort, tlsPort, 7*24*time.Hour)
	dir, data := t.TempDir(), t.TempDir()
	ca := filepath.Join(dir, "pebble-issuer.pem")
	if err := os.WriteFile(ca, p.IssuerPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	acme := []string{"--acme-ca", p.Dir, "--acme-root", p.Minica, "--acme-email", "ops@example.test"}
	api, edgeA, tlsA := freeAddr(t), "127.0.0.1:"+strconv.Itoa(httpPort), "127.0.0.1:"+strconv.Itoa(tlsPort)
	process(t, dir, append([]string{"--data", data, "--api-addr", api, "--edge-addr", edgeA, "--edge-tls-addr", tlsA,
		"--gc-interval", "0"}, acme...)...)
	waitListen(t, api)
	waitListen(t, tlsA)
	tok, err := os.ReadFile(filepath.Join(data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	s := &binServer{api: "http://" + api, token: strings.TrimSpace(string(tok))}
	s.admin(t, "POST", "/v1/deployments", map[string]any{"name": "site"}, nil, 201)
	if code, b := s.call(t, "Bearer "+s.token, "POST", "/v1/deployments/site/versions", "application/x-tar",
		tarOf(t, map[string]string{"index.html": "<h1>over https</h1>"})); code != 201 {
		t.Fatalf("publish: %d %s", code, b)
	}
	s.admin(t, "POST", "/v1/domains", map[string]any{"hostname": "www.example.test", "deployment": "site"}, nil, 201)

	// An unregistered name: a TLS alert, no order.
	if _, err := leafOf(tlsA, "evil.example.test", p.Issuer); err == nil {
		t.Fatal("a certificate was served for an unregistered name")
	}
	if n := p.Orders(); n != 0 {
		t.Fatalf("%d ACME orders for an unregistered name, want none", n)
	}

	// The registered domain, as curl sees it: Pebble's certificate.
	curl := func(addr string) string {
		t.Helper()
		_, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "curl", "-sS", "--fail", "--max-time", "60", "--cacert", ca,
			"--resolve", "www.example.test:"+port+":127.0.0.1", "https://www.example.test:"+port+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s\npebble:\n%s", addr, err, out, p.Log)
		}
		return string(out)
	}
	if body := curl(tlsA); !strings.Contains(body, "<h1>over https</h1>") {
		t.Fatalf("process A over https: %q", body)
	}
	leafA, err := leafOf(tlsA, "www.example.test", p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("%d orders after the first issuance, want 1", n)
	}

	// A second process, edge only, on the same data dir: the same
	// certificate, no order.
	edgeB, tlsB := freeAddr(t), freeAddr(t)
	process(t, dir, append([]string{"--data", data, "--roles", "edge", "--edge-addr", edgeB, "--edge-tls-addr", tlsB}, acme...)...)
	waitListen(t, tlsB)
	if body := curl(tlsB); !strings.Contains(body, "<h1>over https</h1>") {
		t.Fatalf("process B over https: %q", body)
	}
	leafB, err := leafOf(tlsB, "www.example.test", p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if !leafB.Equal(leafA) {
		t.Fatalf("process B serves another certificate (serial %v, A's %v)", leafB.SerialNumber, leafA.SerialNumber)
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("%d orders after the second process served, want 1\npebble:\n%s", n, p.Log)
	}
}

// leafOf completes a TLS handshake with addr for the name host, trusting
// roots, and returns the leaf certificate served.
func leafOf(addr, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}
