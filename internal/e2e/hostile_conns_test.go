package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/metrics/metricstest"
)

// Hostile connections against a real `cairn server` process: slowloris on
// both listeners, held bodies, stalled uploads, and floods of held
// connections past --max-conns.

// binaryEnv runs the cairn binary with args (plus its own data dir and
// loopback listeners) and returns an env that drives it.
func binaryEnv(t *testing.T, args ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, data: filepath.Join(dir, "data")}
	api, edge := freeAddr(t), freeAddr(t)
	process(t, dir, append([]string{"--data", e.data, "--api-addr", api, "--edge-addr", edge, "--roles", "api,edge"}, args...)...)
	waitListen(t, api)
	waitListen(t, edge)
	e.api, e.edge = "http://"+api, "http://"+edge
	tok, err := os.ReadFile(filepath.Join(e.data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	e.token = strings.TrimSpace(string(tok))
	return e
}

func hostOf(u string) string { return strings.TrimPrefix(u, "http://") }

// closedWithin reads c until the server closes (or resets) it and fails
// unless that happens within d. It returns what was read.
func closedWithin(t *testing.T, c net.Conn, d time.Duration, what string) string {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d + 10*time.Second))
	b, err := io.ReadAll(c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	if took := time.Since(start); err != nil || took > d {
		t.Fatalf("%s: closed after %v (%v); want within %v", what, took.Round(time.Millisecond), err, d)
	}
	return string(b)
}

// TestHostileHeldBodies: on both listeners, a request that declares
// Content-Length: 100000 and sends 10 bytes, and headers sent one byte at
// a time, are closed within --body-timeout and --header-timeout (1 s
// here), not held for ever.
func TestHostileHeldBodies(t *testing.T) {
	e := binaryEnv(t, "--header-timeout", "1s", "--body-timeout", "1s", "--idle-timeout", "2s")
	e.publish("held", site("held"))
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "heldimg", "kind": "oci"}), nil)
	for _, ln := range []struct{ name, addr, req, want string }{
		{"api", hostOf(e.api), "POST /v1/deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.token, "HTTP/1.1 400 "},
		{"api-anonymous", hostOf(e.api), "POST /v1/deployments HTTP/1.1\r\nHost: x", "HTTP/1.1 401 "},
		{"registry", hostOf(e.api), "PUT /v2/heldimg/manifests/latest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.token, "HTTP/1.1 400 "},
		{"registry-anonymous", hostOf(e.api), "PUT /v2/heldimg/manifests/latest HTTP/1.1\r\nHost: x", "HTTP/1.1 401 "},
		{"edge", hostOf(e.edge), "GET / HTTP/1.1\r\nHost: held.localhost", "HTTP/1.1 200 "},
		{"edge-post", hostOf(e.edge), "POST / HTTP/1.1\r\nHost: held.localhost", "HTTP/1.1 405 "},
	} {
		t.Run(ln.name+"/body", func(t *testing.T) {
			t.Parallel()
			c := dialT(t, ln.addr)
			fmt.Fprintf(c, "%s\r\nContent-Length: 100000\r\n\r\n0123456789", ln.req)
			if got := closedWithin(t, c, 4*time.Second, "held body"); !strings.HasPrefix(got, ln.want) {
				t.Errorf("held body answered %.300q; want %q…", got, ln.want)
			}
		})
		t.Run(ln.name+"/slowloris", func(t *testing.T) {
			t.Parallel()
			c := dialT(t, ln.addr)
			go func() { // one byte every 200 ms, never the end of the headers
				for _, b := range []byte(ln.req + "\r\nX-Slow: " + strings.Repeat("a", 100)) {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
			closedWithin(t, c, 4*time.Second, "slow headers")
		})
	}
}

// TestHostileStalledUpload: an authenticated publish, and a registry blob
// upload, that stall mid-body are ended within --body-timeout; the
// publish's staging directory is removed. An upload whose bytes keep
// coming is not cut off by the same timeout.
func TestHostileStalledUpload(t *testing.T) {
	e := binaryEnv(t, "--body-timeout", "1s")
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "stall", "kind": "static"}), nil)
	big := tarOf(t, map[string]string{"index.html": strings.Repeat("x", 1<<20)})
	stage := filepath.Join(e.data, "staging")

	c := dialT(t, hostOf(e.api))
	fmt.Fprintf(c, "POST /v1/deployments/stall/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", e.token, len(big))
	c.Write(big[:256<<10]) // then stall
	for i := 0; len(dirEntries(t, stage)) == 0; i++ {
		if i > 100 {
			t.Fatal("the publish made no staging directory")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := closedWithin(t, c, 4*time.Second, "stalled publish")
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("stalled publish answered %.80q; want a 400", got)
	}
	for i := 0; len(dirEntries(t, stage)) > 0; i++ {
		if i > 100 {
			t.Fatalf("staging still holds %v", dirEntries(t, stage))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A registry chunk that stalls.
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "stallimg", "kind": "oci"}), nil)
	req, _ := http.NewRequest("POST", e.api+"/v2/stallimg/blobs/uploads/", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("open upload: %v %v", resp, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	c = dialT(t, hostOf(e.api))
	fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\nabc", loc, e.token)
	if got := closedWithin(t, c, 4*time.Second, "stalled blob chunk"); !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, "BLOB_UPLOAD_INVALID") {
		t.Errorf("stalled chunk answered %.200q; want 400 BLOB_UPLOAD_INVALID", got)
	}

	// A publish that trickles for three body timeouts still succeeds.
	small := tarOf(t, site("trickle"))
	c = dialT(t, hostOf(e.api))
	fmt.Fprintf(c, "POST /v1/deployments/stall/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", e.token, len(small))
	step := len(small)/6 + 1
	for off := 0; off < len(small); off += step {
		time.Sleep(500 * time.Millisecond)
		c.Write(small[off:min(off+step, len(small))])
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trickled publish: %v %v", resp, err)
	}
}

// TestHostileHold2000: while 2,000 connections hold each listener (held
// bodies and unfinished headers), ordinary requests to both still answer.
// With a --max-conns below the flood, connections past the cap are
// refused (a 503 or a reset, never a wait), the other listener is
// untouched, and the edge serves again once the held connections time out.
func TestHostileHold2000(t *testing.T) {
	const hold = 2000
	raiseOpenFiles(t, 2*hold+1000)
	t.Run("under the cap", func(t *testing.T) {
		e := binaryEnv(t, "--max-conns", "3000", "--header-timeout", "1m", "--body-timeout", "1m")
		e.publish("busy", site("busy"))
		start := time.Now()
		holdConns(t, hostOf(e.api), hold)
		holdConns(t, hostOf(e.edge), hold)
		t.Logf("%d connections held on each listener in %v", hold, time.Since(start).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond) // the server has accepted them
		start = time.Now()
		checkAPI(t, e)
		checkEdge(t, e)
		t.Logf("three ordinary requests during the hold: %v", time.Since(start).Round(time.Microsecond))
	})
	t.Run("over the cap", func(t *testing.T) {
		const cap = 200
		e := binaryEnv(t, "--max-conns", fmt.Sprint(cap), "--header-timeout", "2s", "--body-timeout", "2s")
		e.publish("busy", site("busy"))
		start := time.Now()
		held := holdConns(t, hostOf(e.edge), cap)
		time.Sleep(200 * time.Millisecond) // the server has accepted them
		refused := holdConns(t, hostOf(e.edge), hold-cap)
		t0 := time.Now()
		for _, c := range refused {
			if got := closedWithin(t, c, 3*time.Second, "over the cap"); got != "" && !strings.HasPrefix(got, "HTTP/1.1 503 ") {
				t.Fatalf("over the cap: %.80q; want 503 or a reset", got)
			}
		}
		t.Logf("%d connections over the cap of %d refused in %v", hold-cap, cap, time.Since(t0).Round(time.Millisecond))
		checkAPI(t, e)
		resp, err := fresh.Get(e.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := metricstest.Parse(t, string(text))
		if got := m[`cairn_http_connections_refused_total{listener="edge"}`]; got != hold-cap {
			t.Errorf("refused connections counted: %v; want %d", got, hold-cap)
		}
		if got := m[`cairn_http_connections_open{listener="edge"}`]; got != cap {
			t.Errorf("open edge connections: %v; want %d", got, cap)
		}
		end := start.Add(6 * time.Second) // 2 s timeouts, and slack
		for _, c := range held {
			closedWithin(t, c, time.Until(end), "held past the timeouts")
		}
		t.Logf("the %d held connections closed %v after they were opened (timeouts 2 s)", cap, time.Since(start).Round(time.Millisecond))
		checkEdge(t, e)
	})
}

// holdConns opens n connections to addr, each sending either part of its
// headers or a body that never ends, and returns them.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, n)
	for i := range cs {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if i%2 == 0 {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: busy.localhost\r\nX-Slow: a")
		} else {
			fmt.Fprintf(c, "POST /v1/deployments HTTP/1.1\r\nHost: busy.localhost\r\nContent-Length: 100000\r\n\r\n0123456789")
		}
		cs[i] = c
	}
	return cs
}

// fresh is a client that opens new connections.
var fresh = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func checkAPI(t *testing.T, e *env) {
	t.Helper()
	for _, p := range []string{"/healthz", "/v1/deployments/busy"} {
		req, _ := http.NewRequest("GET", e.api+p, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := fresh.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s on the API: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func checkEdge(t *testing.T, e *env) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.edge+"/", nil)
	req.Host = "busy.localhost"
	resp, err := fresh.Do(req)
	if err != nil {
		t.Fatalf("GET / on the edge: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("busy")) {
		t.Fatalf("GET / on the edge: %d %q", resp.StatusCode, b)
	}
}

// raiseOpenFiles raises this process's soft open-file limit to at least n
// (within the hard limit) for the flood tests.
func raiseOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cur >= n {
		return
	}
	if r.Max < n {
		t.Fatalf("the open-file limit is %d; the test needs %d (ulimit -n)", r.Max, n)
	}
	r.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
