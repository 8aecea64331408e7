package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// connCounter is an instance that counts the connections it accepted and
// those closed.
type connCounter struct {
	opened, closed atomic.Int64
	addr           string
}

func countingInstance(t *testing.T, h http.HandlerFunc) *connCounter {
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cc.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cc.addr = srv.Listener.Addr().String()
	return cc
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after 2s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeepAlive: bodiless requests go over the router's own connections,
// kept alive across requests whatever the response's framing (length,
// chunked, none for HEAD); a response that asks to close is not reused;
// idle connections close when their instance leaves the table.
func TestKeepAlive(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	inst := countingInstance(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "part 1;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part 2")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			io.WriteString(w, "hello")
		}
	})
	id := e.instance(v, hostapi.StateHealthy, inst.addr)
	e.waitPool(v, 1)
	srv := e.serve(v)
	c := srv.Client()
	for i := range 30 {
		path, want := "/", "hello"
		if i%2 == 1 {
			path, want = "/chunked", "part 1;part 2"
		}
		if code, body, _ := get(t, c, srv.URL+path); code != 200 || body != want {
			t.Fatalf("GET %s = %d %q", path, code, body)
		}
		resp, err := c.Head(srv.URL)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HEAD = %v, %v", resp, err)
		}
		resp.Body.Close()
	}
	if n := inst.opened.Load(); n != 1 {
		t.Fatalf("60 sequential requests opened %d connections to the instance, want 1", n)
	}
	if code, body, _ := get(t, c, srv.URL+"/close"); code != 200 || body != "bye" {
		t.Fatalf("GET /close = %d %q", code, body)
	}
	waitFor(t, "the connection the instance closed is closed", func() bool { return inst.closed.Load() == 1 })
	get(t, c, srv.URL)
	if n := inst.opened.Load(); n != 2 {
		t.Fatalf("after Connection: close, %d connections opened, want 2", n)
	}
	e.report(id, hostapi.StateStopped, inst.addr)
	waitFor(t, "the idle connection of a stopped instance is closed", func() bool { return inst.closed.Load() == 2 })
}

// rawInstance serves each connection with serve, on a loopback listener.
func rawInstance(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestStaleConnSentAgain: an instance that closes a kept-alive connection
// without saying so (as one whose idle timeout is shorter than the
// router's does) costs no failed request: the request is sent again on a
// new connection, to the same instance (the only one).
func TestStaleConnSentAgain(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	var conns, reqs atomic.Int64
	addr := rawInstance(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		reqs.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_ = req // and close: the router believes it kept alive
	})
	e.instance(v, hostapi.StateHealthy, addr)
	e.waitPool(v, 1)
	srv := e.serve(v)
	for range 5 {
		if code, body, _ := get(t, srv.Client(), srv.URL); code != 200 || body != "ok" {
			t.Fatalf("GET = %d %q", code, body)
		}
		time.Sleep(10 * time.Millisecond) // the close reaches the router's side
	}
	if conns.Load() < 5 || reqs.Load() != 5 {
		t.Fatalf("instance saw %d connections and %d requests, want >= 5 and 5", conns.Load(), reqs.Load())
	}
}

// TestClientLeavesMidResponse: a client that goes away while the body
// streams ends the exchange: the connection to the instance is closed,
// not kept (its rest was never read), and the request no longer counts as
// in flight.
func TestClientLeavesMidResponse(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	release := make(chan struct{})
	defer close(release)
	inst := countingInstance(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	e.instance(v, hostapi.StateHealthy, inst.addr)
	e.waitPool(v, 1)
	srv := e.serve(v)
	c := srv.Client()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	resp.Body.Close() // not read to its end: the client's connection closes
	waitFor(t, "the instance's connection is closed", func() bool { return inst.closed.Load() == 1 })
	b := e.rt.table.Load().pools[v.ID].backends[0]
	waitFor(t, "nothing in flight", func() bool { return b.inflight.Load() == 0 })
	b.idle.mu.Lock()
	idle := len(b.idle.conns)
	b.idle.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections kept, want 0", idle)
	}
}

// TestEarlyHintsAndHeadBound: a 103 reaches the client before the final
// response; a response head over maxHeaderBytes is a 502, not a read
// without end.
func TestEarlyHintsAndHeadBound(t *testing.T) {
	e := newEnv(t)
	v := e.version(true)
	addr := rawInstance(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/huge" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Pad: " + strings.Repeat("a", 1000) + "\r\n"
				for range 2 * maxHeaderBytes / len(line) {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
		}
	})
	e.instance(v, hostapi.StateHealthy, addr)
	e.waitPool(v, 1)
	srv := e.serve(v)
	var hints []string
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h.Get("Link"))
			return nil
		}}))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "body" || len(hints) != 1 || hints[0] != "</app.css>; rel=preload" {
		t.Fatalf("GET = %d %q, hints %q", resp.StatusCode, b, hints)
	}
	code, _, h := get(t, srv.Client(), srv.URL+"/huge")
	if code != http.StatusBadGateway || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET /huge = %d %s", code, h.Get("Content-Type"))
	}
}
