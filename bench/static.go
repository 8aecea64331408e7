package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	apiAddr   = "127.0.0.1:17800"
	edgeAddr  = "127.0.0.1:17880"
	nginxAddr = "127.0.0.1:17881"
)

type site struct{ name, pkg, dir string }

// installSites installs the npm packages the benchmarks publish.
func installSites(work string) ([]site, error) {
	sites := []site{{"monaco", "monaco-editor", ""}, {"fontawesome", "@fortawesome/fontawesome-free", ""}, {"swagger", "swagger-ui-dist", ""}}
	npm := filepath.Join(work, "npm")
	os.MkdirAll(npm, 0o755)
	args := []string{"install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", npm}
	for i := range sites {
		args = append(args, sites[i].pkg)
		sites[i].dir = filepath.Join(npm, "node_modules", sites[i].pkg)
	}
	return sites, run(npm, "npm", args...)
}

// staticSections are the parts of the static benchmark, in run order.
var staticSections = []string{"pack", "edge", "tls"}

// static runs the sections named in args (all of them if none).
func static(args []string) error {
	want := map[string]bool{}
	for _, a := range args {
		if !slices.Contains(staticSections, a) {
			return fmt.Errorf("static: unknown section %q (%s)", a, strings.Join(staticSections, ", "))
		}
		want[a] = true
	}
	on := func(name string) bool { return len(want) == 0 || want[name] }
	if err := ensure(map[string]string{"nginx": "nginx", "wrk": "wrk", "zstd": "zstd", "npm": "npm"}); err != nil {
		return err
	}
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Println("work dir", work)
	sites, err := installSites(work)
	if err != nil {
		return err
	}
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	results := map[string]any{}
	for _, sec := range []struct {
		name string
		run  func(bin, work string, sites []site, results map[string]any) error
	}{{"pack", benchPack}, {"edge", benchEdge}, {"tls", benchTLS}} {
		if on(sec.name) {
			if err := sec.run(bin, work, sites, results); err != nil {
				return err
			}
		}
	}
	js, _ := json.MarshalIndent(results, "", "  ")
	fmt.Printf("\nresults (json):\n%s\n", js)
	return nil
}

// benchPack times `cairn pack` against `tar -cf - . | zstd -3 -T0`,
// alternating, five rounds each, and compares sizes.
func benchPack(bin, work string, sites []site, results map[string]any) error {
	fmt.Printf("\n== pack: cairn pack vs tar -cf - . | zstd -3 -T0 (median of 5, alternating)\n")
	fmt.Printf("%-12s %8s %10s %10s %7s %12s %12s %7s\n", "site", "MB in", "cairn s", "tar|zstd s", "time×", "cairn size", "zstd size", "size×")
	for _, s := range sites {
		in, _ := dirSize(s.dir)
		out1, out2 := filepath.Join(work, "c.tar.zst"), filepath.Join(work, "r.tar.zst")
		var tc, tr []float64
		for range 5 {
			t0 := time.Now()
			if _, err := output("", bin, "pack", s.dir, "-o", out1); err != nil {
				return err
			}
			tc = append(tc, time.Since(t0).Seconds())
			t0 = time.Now()
			if err := run(s.dir, "sh", "-c", "tar -cf - . | zstd -3 -T0 -q > "+out2); err != nil {
				return err
			}
			tr = append(tr, time.Since(t0).Seconds())
		}
		c, _ := os.Stat(out1)
		r, _ := os.Stat(out2)
		mc, mr := median(tc), median(tr)
		fmt.Printf("%-12s %8.1f %10.3f %10.3f %7.2f %12d %12d %7.3f\n", s.name, float64(in)/1e6, mc, mr, mc/mr, c.Size(), r.Size(), float64(c.Size())/float64(r.Size()))
		results["pack_"+s.name] = map[string]any{"cairn_s": mc, "tar_zstd_s": mr, "time_ratio": mc / mr,
			"cairn_bytes": c.Size(), "zstd_bytes": r.Size(), "size_ratio": float64(c.Size()) / float64(r.Size())}
	}
	return nil
}

// pick returns the regular file under the sites whose size is closest to want.
func pick(sites []site, want int64) (site, string, int64) {
	var best site
	var bestPath string
	var bestSize int64
	diff := int64(math.MaxInt64)
	for _, s := range sites {
		filepath.Walk(s.dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			if d := abs(info.Size() - want); d < diff {
				diff, best, bestSize = d, s, info.Size()
				bestPath, _ = filepath.Rel(s.dir, p)
			}
			return nil
		})
	}
	return best, filepath.ToSlash(bestPath), bestSize
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func benchEdge(bin, work string, sites []site, results map[string]any) error {
	data := filepath.Join(work, "data")
	// nginx runs with access_log off; so does cairn.
	srv := exec.Command(bin, "server", "--data", data, "--api-addr", apiAddr, "--edge-addr", edgeAddr, "--access-log=false")
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitPort(apiAddr); err != nil {
		return err
	}
	for _, s := range sites {
		if err := run("", bin, "publish", s.dir, "--deployment", s.name, "--api", "http://"+apiAddr, "--data", data); err != nil {
			return err
		}
	}
	fmt.Printf("\n== edge: cairn vs nginx (wrk -t2 -c32 keep-alive, 8 s, median of 5 alternating rounds)\n")
	for _, c := range []struct {
		label string
		size  int64
	}{{"small", 4 << 10}, {"large", 5 << 20}} {
		s, rel, size := pick(sites, c.size)
		stop, err := startNginx(work, s.dir)
		if err != nil {
			return err
		}
		host := s.name + ".localhost"
		if err := sameBytes(host, rel); err != nil {
			stop()
			return err
		}
		var cr, nr, cm, nm, cl, nl []float64
		for round := range 6 { // round 0 warms both up
			n, err := wrk("http://"+nginxAddr+"/"+rel, "")
			if err != nil {
				stop()
				return err
			}
			c, err := wrk("http://"+edgeAddr+"/"+rel, host)
			if err != nil {
				stop()
				return err
			}
			if round > 0 {
				nr, nm, nl = append(nr, n.rps), append(nm, n.mbps), append(nl, n.p99ms)
				cr, cm, cl = append(cr, c.rps), append(cm, c.mbps), append(cl, c.p99ms)
			}
		}
		stop()
		fmt.Printf("%-6s %s/%s (%d bytes)\n", c.label, s.name, rel, size)
		fmt.Printf("       nginx %10.0f req/s %9.1f MB/s   p99 %7.1f ms\n", median(nr), median(nm), median(nl))
		fmt.Printf("       cairn %10.0f req/s %9.1f MB/s   p99 %7.1f ms   ratio %.2f×\n", median(cr), median(cm), median(cl), median(cr)/median(nr))
		fmt.Printf("       rounds (cairn/nginx):")
		for i := range cr {
			fmt.Printf(" %.2f", cr[i]/nr[i])
		}
		fmt.Println()
		results["edge_"+c.label] = map[string]any{"file": s.name + "/" + rel, "bytes": size,
			"nginx_rps": median(nr), "cairn_rps": median(cr), "nginx_mbps": median(nm), "cairn_mbps": median(cm),
			"nginx_p99_ms": median(nl), "cairn_p99_ms": median(cl), "ratio": median(cr) / median(nr)}
	}
	return benchRules(bin, data, work, sites, results)
}

// benchRules measures what site rules cost the edge: small-file req/s of
// the same site published as it is and with a 1,000-rule _redirects and a
// 100-rule _headers (of every kind: literal, splat, placeholder, query,
// forced), alternating, five rounds after a warm-up.
func benchRules(bin, data, work string, sites []site, results map[string]any) error {
	s, rel, size := pick(sites, 4<<10)
	dir := filepath.Join(work, "rules-site")
	if err := run("", "cp", "-al", s.dir, dir); err != nil { // hard links: no copy
		return err
	}
	var red, hdr strings.Builder
	for i := range 1000 {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&red, "/old/page-%d /new/page-%d 301\n", i, i)
		case 1:
			fmt.Fprintf(&red, "/legacy-%d/* /archive/%d/:splat 302\n", i, i)
		case 2:
			fmt.Fprintf(&red, "/blog-%d/:year/:slug /posts/:year/:slug 301\n", i)
		case 3:
			fmt.Fprintf(&red, "/search-%d q=:q /find?q=:q 302\n", i)
		case 4:
			fmt.Fprintf(&red, "/app-%d/* /index.html 200!\n", i) // forced: looked at for existing files too
		}
	}
	top, _, _ := strings.Cut(rel, "/")
	for i := range 98 {
		fmt.Fprintf(&hdr, "/section-%d/*\n  X-Section: %d\n", i, i)
	}
	fmt.Fprintf(&hdr, "/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n")
	fmt.Fprintf(&hdr, "/%s/*\n  Cache-Control: public, max-age=3600\n", top)
	for name, text := range map[string]string{"_redirects": red.String(), "_headers": hdr.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	ruled := s.name + "-rules"
	if err := run("", bin, "publish", dir, "--deployment", ruled, "--api", "http://"+apiAddr, "--data", data); err != nil {
		return err
	}
	plainHost, rulesHost := s.name+".localhost", ruled+".localhost"
	// The rules are in force: the file answers with the site's headers.
	req, _ := http.NewRequest("GET", "http://"+edgeAddr+"/"+rel, nil)
	req.Host = rulesHost
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		return fmt.Errorf("%s/%s with rules: status %d, headers %v", rulesHost, rel, resp.StatusCode, resp.Header)
	}
	fmt.Printf("\n== edge: small file with a 1,000-rule _redirects and a 100-rule _headers vs without (wrk -t2 -c32, 8 s, median of 5 alternating rounds)\n")
	var pr, rr []float64
	for round := range 6 { // round 0 warms both up
		p, err := wrk("http://"+edgeAddr+"/"+rel, plainHost)
		if err != nil {
			return err
		}
		r, err := wrk("http://"+edgeAddr+"/"+rel, rulesHost)
		if err != nil {
			return err
		}
		if round > 0 {
			pr, rr = append(pr, p.rps), append(rr, r.rps)
		}
	}
	fmt.Printf("%s/%s (%d bytes)\n", s.name, rel, size)
	fmt.Printf("       no rules   %10.0f req/s\n", median(pr))
	fmt.Printf("       with rules %10.0f req/s   ratio %.2f×\n", median(rr), median(rr)/median(pr))
	fmt.Printf("       rounds (rules/none):")
	for i := range rr {
		fmt.Printf(" %.2f", rr[i]/pr[i])
	}
	fmt.Println()
	results["edge_rules_small"] = map[string]any{"file": s.name + "/" + rel, "bytes": size,
		"plain_rps": median(pr), "rules_rps": median(rr), "ratio": median(rr) / median(pr)}
	return nil
}

// sameBytes checks that both servers return the same body.
func sameBytes(host, rel string) error {
	get := func(url, host string) ([]byte, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return io.ReadAll(resp.Body)
	}
	a, err := get("http://"+nginxAddr+"/"+rel, "")
	if err != nil {
		return err
	}
	b, err := get("http://"+edgeAddr+"/"+rel, host)
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("cairn and nginx serve different bytes for %s", rel)
	}
	return nil
}

func startNginx(work, root string) (func(), error) {
	stop, _, err := startNginxConf(work, nginxAddr, fmt.Sprintf("server { listen %s; root %s; }", nginxAddr, root))
	return stop, err
}

// startNginxTLS serves root over TLS on nginxTLSAddr with the certificate
// and key cairn's edge serves, set up like Go's crypto/tls server: TLS 1.3
// and 1.2, the server's preference of Go's cipher suites (AES-128-GCM
// first), Go's curves that OpenSSL has (not X25519MLKEM768), one TLS 1.3
// session ticket per handshake as Go sends, and HTTP/2 by ALPN; and
// without TLS on nginxAddr. It returns the master's process id too.
func startNginxTLS(work, root, cert, key string) (func(), int, error) {
	return startNginxConf(work, nginxTLSAddr, fmt.Sprintf(`ssl_protocols TLSv1.2 TLSv1.3;
  ssl_prefer_server_ciphers on;
  ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
  ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
  ssl_ecdh_curve X25519:prime256v1:secp384r1;
  ssl_session_tickets on;
  ssl_session_cache shared:SSL:10m;
  ssl_session_timeout 7d;
  ssl_conf_command NumTickets 1;
  server {
    listen %s ssl http2;
    listen %s;
    server_name %s;
    ssl_certificate %s;
    ssl_certificate_key %s;
    root %s;
  }`, nginxTLSAddr, nginxAddr, tlsHost, cert, key, root))
}

// startNginxConf runs nginx with server (the http block's own lines),
// waits for addr and returns how to stop it and its master's process id.
func startNginxConf(work, addr, server string) (func(), int, error) {
	prefix := filepath.Join(work, "nginx")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	conf := fmt.Sprintf(`worker_processes auto;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  etag on;
  %[2]s
}
`, prefix, server)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, 0, err
	}
	bin := "nginx"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/nginx"
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", cf, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	if err := waitPort(addr); err != nil {
		cmd.Process.Kill()
		return nil, 0, err
	}
	return func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }, cmd.Process.Pid, nil
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	tpsRE = regexp.MustCompile(`Transfer/sec:\s+([\d.]+)([KMG]?B)`)
	p99RE = regexp.MustCompile(`(?m)^\s+99%\s+([\d.]+)(us|ms|s)\s*$`)
)

// wrkResult is what one wrk run measured.
type wrkResult struct{ rps, mbps, p99ms float64 }

// wrk runs wrk against url: requests/s, MB/s and the 99th percentile
// latency.
func wrk(url, host string) (wrkResult, error) {
	args := []string{"-d8s"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	return wrkArgs(url, args...)
}

// wrkArgs runs wrk -t2 -c32 --latency with more arguments (give -d)
// against url.
func wrkArgs(url string, more ...string) (wrkResult, error) {
	// A 5 MB response to one of 32 connections sometimes takes over wrk's
	// default 2 s timeout (cairn's tail is longer than nginx's: see
	// docs/performance.md); a timeout is still an error, at 10 s.
	args := append([]string{"-t2", "-c32", "--timeout", "10s", "--latency"}, more...)
	args = append(args, url)
	out, err := output("", "wrk", args...)
	if err != nil {
		return wrkResult{}, err
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		return wrkResult{}, fmt.Errorf("wrk saw errors on %s:\n%s", url, out)
	}
	m, t, l := rpsRE.FindStringSubmatch(out), tpsRE.FindStringSubmatch(out), p99RE.FindStringSubmatch(out)
	if m == nil || t == nil || l == nil {
		return wrkResult{}, fmt.Errorf("cannot parse wrk output:\n%s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(t[1], 64)
	r.mbps = v * map[string]float64{"B": 1e-6, "KB": 1024 / 1e6, "MB": 1 << 20 / 1e6, "GB": 1 << 30 / 1e6}[t[2]]
	p, _ := strconv.ParseFloat(l[1], 64)
	r.p99ms = p * map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3}[l[2]]
	return r, nil
}
