package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"time"

	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

const (
	edgeTLSAddr  = "127.0.0.1:17443"
	nginxTLSAddr = "127.0.0.1:17444"
	// tlsHost is the registered domain the edge obtains a certificate for.
	// It resolves nowhere: Pebble's DNS answers 127.0.0.1 for it, and wrk
	// is told to connect to 127.0.0.1 (resolveLua) while it keeps the name
	// for SNI and Host.
	tlsHost = "static.bench.test"
)

// resolveLua makes wrk connect to 127.0.0.1 whatever the URL's host, which
// stays the SNI name and the Host header.
const resolveLua = `wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
`

// benchTLS measures HTTPS on the small file: cairn's edge with the
// certificate it obtained from Pebble (ACME on loopback) against nginx with
// TLS on the same certificate and key, taken out of cairn's store. It
// starts its own server, so that the plain edge figures above are of a
// server without --edge-tls-addr.
func benchTLS(bin, work string, sites []site, results map[string]any) error {
	_, httpPort, _ := net.SplitHostPort(edgeAddr)
	_, tlsPort, _ := net.SplitHostPort(edgeTLSAddr)
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(tlsPort)
	p, stopPebble, err := startPebble(work, hp, tp)
	if err != nil {
		return err
	}
	defer stopPebble()
	data := filepath.Join(work, "tls-data")
	logf, err := os.Create(filepath.Join(work, "tls-server.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	srv := exec.Command(bin, "server", "--data", data, "--api-addr", apiAddr, "--edge-addr", edgeAddr,
		"--edge-tls-addr", edgeTLSAddr, "--acme-ca", p.Dir, "--acme-root", p.Minica, "--access-log=false")
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitPort(apiAddr); err != nil {
		return err
	}
	s, rel, size := pick(sites, 4<<10)
	if err := run("", bin, "publish", s.dir, "--deployment", s.name+"-tls", "--domain", tlsHost,
		"--api", "http://"+apiAddr, "--data", data); err != nil {
		return err
	}
	// The first HTTPS request makes the edge obtain the certificate.
	t0 := time.Now()
	leaf, body, err := httpsGet(edgeTLSAddr, rel, p.Issuer, 90*time.Second)
	if err != nil {
		return fmt.Errorf("first HTTPS request to the edge: %w (server log %s, pebble log %s)", err, logf.Name(), filepath.Join(work, "pebble.log"))
	}
	fmt.Printf("\nedge obtained a certificate for %s from Pebble in %.1f s (issuer %q, expires %s)\n",
		tlsHost, time.Since(t0).Seconds(), leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339))
	certFile, keyFile, err := storedCert(filepath.Join(data, "cairn.db"), filepath.Join(work, "nginx-tls"))
	if err != nil {
		return err
	}
	stop, nginxPid, err := startNginxTLS(work, s.dir, certFile, keyFile)
	if err != nil {
		return err
	}
	defer stop()
	nleaf, nbody, err := httpsGet(nginxTLSAddr, rel, p.Issuer, 10*time.Second)
	if err != nil {
		return fmt.Errorf("nginx over TLS: %w", err)
	}
	if !nleaf.Equal(leaf) || nbody != body {
		return fmt.Errorf("nginx and cairn differ: same certificate %v, same body %v", nleaf.Equal(leaf), nbody == body)
	}
	params := map[string]string{}
	for name, addr := range map[string]string{"cairn": edgeTLSAddr, "nginx": nginxTLSAddr} {
		if params[name], err = handshakeParams(addr, p.Issuer); err != nil {
			return err
		}
	}
	lua := filepath.Join(work, "resolve.lua")
	if err := os.WriteFile(lua, []byte(resolveLua), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n== edge over TLS: cairn vs nginx, same certificate (wrk -t2 -c32 keep-alive, 8 s, median of 5 rounds;\n")
	fmt.Printf("   each round runs nginx TLS, cairn TLS, nginx plain, cairn plain: the plain pair shows what the machine allows now)\n")
	fmt.Printf("negotiated by a Go client: cairn %s; nginx %s\n", params["cairn"], params["nginx"])
	url := func(scheme, addr string) string {
		_, port, _ := net.SplitHostPort(addr)
		return scheme + "://" + tlsHost + ":" + port + "/" + rel
	}
	cairnPids := func() []int { return []int{srv.Process.Pid} }
	nginxPids := func() []int { return family(nginxPid) }
	cairn, nginx := target{url("https", edgeTLSAddr), cairnPids}, target{url("https", nginxTLSAddr), nginxPids}
	ka, err := alternate(8*time.Second, []string{"-s", lua}, nginx, cairn,
		target{url("http", nginxAddr), nginxPids}, target{url("http", edgeAddr), cairnPids})
	if err != nil {
		return err
	}
	file := fmt.Sprintf("%s/%s (%d bytes)", s.name, rel, size)
	tlsRes := compare("small  "+file+", HTTPS", "req/s", ka[1], ka[0])
	tlsRes["file"], tlsRes["bytes"], tlsRes["negotiated"] = s.name+"/"+rel, size, params
	results["edge_tls_small"] = tlsRes
	results["edge_tls_small_plain_pair"] = compare("       the same over plain HTTP in the same rounds", "req/s", ka[3], ka[2])

	fmt.Printf("\n== TLS handshakes: a new connection per request (Connection: close; wrk -t2 -c32, 5 s, median of 5 alternating rounds; informational)\n")
	hs, err := alternate(5*time.Second, []string{"-s", lua, "-H", "Connection: close"}, nginx, cairn)
	if err != nil {
		return err
	}
	results["edge_tls_handshakes"] = compare("small  "+file, "handshakes/s", hs[1], hs[0])
	return nil
}

// series are the rounds of one target: req/s, p99 latency (ms) and CPU
// time per request (µs, user and system, of every process of the server).
type series struct{ rps, p99, cpu []float64 }

// target is a server under test: a URL and its process ids.
type target struct {
	url  string
	pids func() []int
}

// alternate runs wrk on each target in turn, six times, and keeps the
// last five rounds (the first warms them up). d is the length of a run.
func alternate(d time.Duration, args []string, ts ...target) ([]series, error) {
	out := make([]series, len(ts))
	args = append(args, "-d"+d.String())
	for round := range 6 {
		for i, t := range ts {
			cpu0 := cpuSeconds(t.pids())
			r, err := wrkArgs(t.url, args...)
			if err != nil {
				return nil, err
			}
			cpu := (cpuSeconds(t.pids()) - cpu0) / (r.rps * d.Seconds()) * 1e6
			if round > 0 {
				out[i].rps, out[i].p99, out[i].cpu = append(out[i].rps, r.rps), append(out[i].p99, r.p99ms), append(out[i].cpu, cpu)
			}
		}
	}
	return out, nil
}

// ratios are cairn's rounds over nginx's.
func ratios(c, n series) []float64 {
	var out []float64
	for i := range c.rps {
		out = append(out, c.rps[i]/n.rps[i])
	}
	return out
}

// compare prints cairn against nginx and returns their figures for the
// JSON results.
func compare(label, unit string, c, n series) map[string]any {
	fmt.Printf("%s\n", label)
	fmt.Printf("       nginx %10.0f %s   p99 %7.1f ms   CPU %6.1f µs each\n", median(n.rps), unit, median(n.p99), median(n.cpu))
	fmt.Printf("       cairn %10.0f %s   p99 %7.1f ms   CPU %6.1f µs each   ratio %.2f×\n", median(c.rps), unit, median(c.p99), median(c.cpu), median(c.rps)/median(n.rps))
	fmt.Printf("       rounds (cairn/nginx):")
	for _, x := range ratios(c, n) {
		fmt.Printf(" %.2f", x)
	}
	fmt.Println()
	return map[string]any{"nginx_per_s": median(n.rps), "cairn_per_s": median(c.rps), "nginx_p99_ms": median(n.p99), "cairn_p99_ms": median(c.p99),
		"nginx_cpu_us_each": median(n.cpu), "cairn_cpu_us_each": median(c.cpu), "ratio": median(c.rps) / median(n.rps), "rounds": ratios(c, n)}
}

// cpuSeconds is the user and system CPU time the processes have used.
func cpuSeconds(pids []int) float64 {
	var ticks float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ") // the command may hold spaces
		f := strings.Fields(rest)
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			s, _ := strconv.ParseFloat(f[12], 64)
			ticks += u + s
		}
	}
	return ticks / 100 // USER_HZ
}

// family is pid and its children (nginx's master and workers).
func family(pid int) []int {
	pids := []int{pid}
	ds, _ := os.ReadDir("/proc")
	for _, d := range ds {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	return pids
}

// httpsGet gets /rel from addr as https://tlsHost/rel, trusting roots, and
// returns the server's leaf certificate and the body.
func httpsGet(addr, rel string, roots *x509.CertPool, timeout time.Duration) (*x509.Certificate, string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: tlsHost},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, port, _ := net.SplitHostPort(addr)
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+tlsHost+":"+port+"/"+rel, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("%s: status %d", req.URL, resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0], string(b), nil
}

// handshakeParams says what a Go client negotiates with addr: version,
// cipher suite, key exchange, ALPN protocol.
func handshakeParams(addr string, roots *x509.CertPool) (string, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: tlsHost, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return "", fmt.Errorf("handshake with %s: %w", addr, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return fmt.Sprintf("%s %s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, st.NegotiatedProtocol), nil
}

// storedCert takes tlsHost's certificate chain and private key out of
// cairn's metadata store (certmagic's keys, as internal/certs.Storage
// stores them), read only, and writes them to dir as PEM files for nginx.
func storedCert(db, dir string) (certFile, keyFile string, err error) {
	st, err := sqlite.Open(db)
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	ctx := context.Background()
	es, err := st.ListCerts(ctx, "certificates")
	if err != nil {
		return "", "", err
	}
	var crt, key []byte
	for _, e := range es {
		switch {
		case strings.HasSuffix(e.Key, "/"+tlsHost+"/"+tlsHost+".crt"):
			crt, _, err = st.GetCert(ctx, e.Key)
		case strings.HasSuffix(e.Key, "/"+tlsHost+"/"+tlsHost+".key"):
			key, _, err = st.GetCert(ctx, e.Key)
		}
		if err != nil {
			return "", "", err
		}
	}
	if crt == nil || key == nil {
		return "", "", errors.New("no certificate and key for " + tlsHost + " in cairn's store")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, crt, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, key, 0o600)
}
