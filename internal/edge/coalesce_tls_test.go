package edge

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSigned is a certificate for "edge.test" and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge.test"},
		DNSNames: []string{"edge.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsServer serves h through CoalesceTLS on loopback (HTTP/2 and
// HTTP/1.1 by ALPN) and returns its address, a client config that trusts
// it, and the raw connections accepted so far.
func tlsServer(t *testing.T, h http.Handler) (string, *tls.Config, func() []*coalescedConn) {
	t.Helper()
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
	var mu sync.Mutex
	var conns []*coalescedConn
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if cc, _ := under(c); cc != nil && s == http.StateNew {
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
		}
	}
	go srv.Serve(CoalesceTLS(srv, ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "edge.test"}, func() []*coalescedConn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*coalescedConn(nil), conns...)
	}
}

// TestCoalesceTLSOneWrite: over TLS and HTTP/1.1, the first response goes
// out as crypto/tls writes it (header and body records, two writes), and
// every later small response of the keep-alive connection in one write;
// larger ones, pipelined ones and one that closes the connection arrive
// whole.
func TestCoalesceTLSOneWrite(t *testing.T) {
	addr, cfg, conns := tlsServer(t, http.HandlerFunc(bodyOfSize))
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := func(n int) {
		t.Helper()
		io.WriteString(c, "GET /"+strconv.Itoa(n)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(b, pattern(n)) {
			t.Fatalf("%d bytes: body differs (%d bytes)", n, len(b))
		}
	}
	get(4098) // not held: the protocol is not known yet
	waitFor(t, func() bool { return len(conns()) == 1 && conns()[0].proto.Load() == protoHTTP1 })
	cc := conns()[0]
	first := sends(cc)
	for i, n := range []int{4098, 100, 20000, 0} {
		get(n)
		waitFor(t, func() bool { return sends(cc) == first+i+1 })
	}
	get(coalesceLimit + 10)
	get(3 << 20)
	io.WriteString(c, "GET /10 HTTP/1.1\r\nHost: x\r\n\r\nGET /7000 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, n := range []int{10, 7000, 3} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); !bytes.Equal(b, pattern(n)) {
			t.Fatalf("pipelined /%d: %d bytes", n, len(b))
		}
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after Connection: close: %d bytes, %v; want EOF", n, err)
	}
}

// TestCoalesceTLSHTTP2: an HTTP/2 connection never holds: requests one
// after another (the connection goes idle between them) and concurrent
// ones, with and without bodies, all answer.
func TestCoalesceTLSHTTP2(t *testing.T) {
	addr, cfg, conns := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			io.Copy(w, r.Body)
			return
		}
		bodyOfSize(w, r)
	}))
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "https://" + addr + "/"
	check := func(resp *http.Response, err error, want []byte) { // t.Error: also on other goroutines
		t.Helper()
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 || !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes, want %d", resp.Proto, len(b), len(want))
		}
	}
	for _, n := range []int{4098, 100, 0, 70000, 4098} {
		resp, err := client.Get(url + strconv.Itoa(n))
		check(resp, err, pattern(n))
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			resp, err := client.Post(url, "text/plain", strings.NewReader(strings.Repeat("x", 1000*i)))
			check(resp, err, []byte(strings.Repeat("x", 1000*i)))
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	cs := conns()
	if len(cs) != 1 || cs[0].proto.Load() != protoHTTP2 {
		t.Fatalf("%d connections, want 1 decided HTTP/2", len(cs))
	}
	cs[0].mu.Lock()
	held, through := cs[0].held != nil, cs[0].through
	cs[0].mu.Unlock()
	if held || !through {
		t.Fatalf("HTTP/2 connection: held %v, through %v", held, through)
	}
}
