package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/certs"
	"github.com/cairnhq/cairn/internal/certs/pebbletest"
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

func newEdge(t *testing.T, db string, p *pebbletest.Pebble, d *domains, httpLn, tlsLn net.Listener) *edgeProc {
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &edgeProc{httpLn: httpLn, tlsLn: tlsLn}
	e.mgr, err = certs.New(certs.Config{Certs: st, Domains: d, CA: p.Dir, Email: "ops@example.test",
		Roots: p.TLSRoots, HTTPAddr: httpLn.Addr().String(), TLSAddr: tlsLn.Addr().String(),
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
	httpPort, tlsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
	p := pebbletest.Start(t, httpPort, tlsPort, time.Minute)
	db := filepath.Join(t.TempDir(), "meta.db")
	d := &domains{}
	a := newEdge(t, db, p, d, listenOn(t, httpPort), listenOn(t, tlsPort))

	// Refusal: an unregistered name gets a TLS alert, and no order.
	_, _, err := get(t, a, p.Issuer, "evil.example.test")
	var alert tls.AlertError
	if err == nil || !(errors.As(err, &alert) || strings.Contains(err.Error(), "tls: ")) {
		t.Fatalf("unregistered name: err = %v, want a TLS alert", err)
	}
	if n := p.Orders(); n != 0 || a.obtaining.Load() != 0 {
		t.Fatalf("unregistered name: %d orders, %d obtaining events; want none", n, a.obtaining.Load())
	}

	// Issuance: the registered domain gets a Pebble-issued certificate,
	// over HTTP/2.
	leaf, body, err := get(t, a, p.Issuer, registered)
	if err != nil {
		t.Fatalf("registered name: %v\npebble:\n%s", err, p.Log)
	}
	if leaf.VerifyHostname(registered) != nil || !strings.HasPrefix(body, "hello "+registered+":") || !strings.HasSuffix(body, " over HTTP/2.0") {
		t.Fatalf("cert for %v, body %q", leaf.DNSNames, body)
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("%d orders after one issuance, want 1", n)
	}

	// A second edge process on the same database serves the same
	// certificate without an order of its own.
	b := newEdge(t, db, p, d, listenOn(t, 0), listenOn(t, 0))
	leafB, _, err := get(t, b, p.Issuer, registered)
	if err != nil {
		t.Fatal(err)
	}
	if !leafB.Equal(leaf) || p.Orders() != 1 || b.obtaining.Load() != 0 {
		t.Fatalf("second process: same cert %v, %d orders, %d obtaining", leafB.Equal(leaf), p.Orders(), b.obtaining.Load())
	}

	// Renewal: a one-minute certificate is renewed in the last 40% of its
	// life (by either process: they share the lock), before it expires.
	deadline := leaf.NotAfter
	for {
		cur, _, err := get(t, a, p.Issuer, registered)
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
			t.Fatalf("not renewed before expiry %v; pebble:\n%s", leaf.NotAfter, p.Log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := p.Orders(); n != 2 {
		t.Fatalf("%d orders after a renewal, want 2", n)
	}
}
