package main

import (
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
	"time"
)

// pebble is a running Pebble (an ACME CA for tests) and its
// pebble-challtestsrv, which answers 127.0.0.1 for every name, so that
// Pebble validates challenges against listeners on loopback.
type pebble struct {
	dir    string // ACME directory URL
	minica string // PEM file: the root of Pebble's own HTTPS (cairn's --acme-root)
	issuer *x509.CertPool
	stop   func()
}

// freePort is a loopback port nothing listens on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPebble builds Pebble (a Go tool dependency of the module) and runs
// it, validating HTTP-01 challenges on httpPort and TLS-ALPN-01 on tlsPort
// of 127.0.0.1, issuing certificates valid for a day. Its output goes to
// work/pebble.log.
func startPebble(work string, httpPort, tlsPort int) (*pebble, error) {
	bin := filepath.Join(work, "pebble-bin")
	c := exec.Command("go", "build", "-o", bin+"/",
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv")
	c.Dir = repoDir()
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("go build pebble: %w", err)
	}
	src, err := output(repoDir(), "go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
	if err != nil {
		return nil, err
	}
	src = strings.TrimSpace(src)
	var ports [4]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	dns, dnsMgmt, acme, mgmt := ports[0], ports[1], ports[2], ports[3]
	logf, err := os.Create(filepath.Join(work, "pebble.log"))
	if err != nil {
		return nil, err
	}
	p := &pebble{minica: filepath.Join(src, "test/certs/pebble.minica.pem")}
	var procs []*exec.Cmd
	p.stop = func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
		logf.Close()
	}
	startProc := func(env []string, name string, args ...string) error {
		c := exec.Command(name, args...)
		c.Stdout, c.Stderr, c.Env = logf, logf, append(os.Environ(), env...)
		if err := c.Start(); err != nil {
			return err
		}
		procs = append(procs, c)
		return nil
	}
	if err := startProc(nil, filepath.Join(bin, "pebble-challtestsrv"),
		"-dnsserver", "127.0.0.1:"+strconv.Itoa(dns), "-management", "127.0.0.1:"+strconv.Itoa(dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""); err != nil {
		p.stop()
		return nil, err
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
			"description": "a day", "validityPeriod": 86400}},
	}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		p.stop()
		return nil, err
	}
	if err := startProc([]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		filepath.Join(bin, "pebble"), "-config", conf, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dns)); err != nil {
		p.stop()
		return nil, err
	}
	p.dir = fmt.Sprintf("https://127.0.0.1:%d/dir", acme)
	minica, err := os.ReadFile(p.minica)
	if err != nil {
		p.stop()
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(minica)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
		if err == nil {
			pem, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.issuer = x509.NewCertPool()
			if resp.StatusCode == 200 && p.issuer.AppendCertsFromPEM(pem) {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("pebble did not start (%v): see %s", err, logf.Name())
		}
	}
}
