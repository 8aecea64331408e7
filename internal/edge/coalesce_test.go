package edge

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// coalescedServer serves h through Coalesce on loopback and returns its
// address and a function that gives the connections accepted so far.
func coalescedServer(t *testing.T, h http.Handler) (string, *http.Server, func() []*coalescedConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	var mu sync.Mutex
	var conns []*coalescedConn
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if cc, ok := c.(*coalescedConn); ok && s == http.StateNew {
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
		}
		if prev != nil {
			prev(c, s)
		}
	}
	cl := Coalesce(srv, ln)
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv, func() []*coalescedConn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*coalescedConn(nil), conns...)
	}
}

// bodyOfSize answers /N with N bytes.
func bodyOfSize(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Path[1:])
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(pattern(n))
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func sends(c *coalescedConn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sends
}

// TestCoalesceOneWrite: a response up to the limit leaves in one write call,
// on every request of a keep-alive connection; larger ones arrive whole.
func TestCoalesceOneWrite(t *testing.T) {
	addr, _, conns := coalescedServer(t, http.HandlerFunc(bodyOfSize))
	c := dial(t, addr)
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
	for i, n := range []int{0, 100, 4098, 4096 - 100, 20000, 5000} {
		get(n)
		waitFor(t, func() bool { return len(conns()) == 1 && sends(conns()[0]) == i+1 })
	}
	// Over the limit: held and new bytes leave in one writev, the rest
	// straight; the body arrives whole.
	get(coalesceLimit - 10)
	get(3 << 20)
}

// dial connects to addr; the connection gives up after 5 s and closes
// when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

// TestCoalescePipelinedAndClose: pipelined requests get their responses in
// order, and a response that closes the connection is sent before it is.
func TestCoalescePipelinedAndClose(t *testing.T) {
	addr, _, _ := coalescedServer(t, http.HandlerFunc(bodyOfSize))
	c := dial(t, addr)
	io.WriteString(c, "GET /10 HTTP/1.1\r\nHost: x\r\n\r\nGET /7000 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /30 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for _, n := range []int{10, 7000, -30, 3} {
		req := &http.Request{Method: "GET"}
		if n < 0 {
			req.Method = "HEAD"
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if n >= 0 && !bytes.Equal(b, pattern(n)) || n < 0 && (len(b) != 0 || resp.ContentLength != int64(-n)) {
			t.Fatalf("/%d: got %d bytes, Content-Length %d", n, len(b), resp.ContentLength)
		}
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after Connection: close: %d, %v; want EOF", n, err)
	}
}

// TestCoalesceHijack: a hijacked connection's writes are not held.
func TestCoalesceHijack(t *testing.T) {
	addr, _, _ := coalescedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		bw.Flush()
		b := make([]byte, 5)
		io.ReadFull(bw.Reader, b)
		c.Write(b) // echo, with the connection still open
		io.ReadFull(bw.Reader, b[:1])
	}))
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "hello")
	b := make([]byte, 5)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "hello" {
		t.Fatalf("echo: %q %v", b, err)
	}
}

// TestCoalesceCloseDuringWrite: closing the server ends a write blocked on a
// client that does not read; Close does not wait for it.
func TestCoalesceCloseDuringWrite(t *testing.T) {
	started := make(chan struct{})
	addr, srv, _ := coalescedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		chunk := pattern(1 << 20)
		for range 256 { // far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	time.Sleep(50 * time.Millisecond) // the write blocks
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Server.Close blocked behind a stalled write")
	}
}

// TestCoalesceShutdown: a graceful shutdown in the middle of traffic cuts
// no response short: every response a client gets is whole.
func TestCoalesceShutdown(t *testing.T) {
	addr, srv, _ := coalescedServer(t, http.HandlerFunc(bodyOfSize))
	var wg sync.WaitGroup
	var mu sync.Mutex
	whole := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for {
				if _, err := io.WriteString(c, "GET /4098 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return // closed between responses
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil || !bytes.Equal(b, pattern(4098)) {
					t.Errorf("a response cut short: %d bytes, %v", len(b), err)
					return
				}
				mu.Lock()
				whole++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if whole == 0 {
		t.Fatal("no response before the shutdown")
	}
}

// TestCoalesceRequestBody: the response to a request with a body is not
// held, since net/http reads that body after the handler: a client waiting
// for 100 Continue gets the response at once, and the next request on the
// connection is held again.
func TestCoalesceRequestBody(t *testing.T) {
	addr, _, conns := coalescedServer(t, http.HandlerFunc(bodyOfSize))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	// Unread body, Expect: 100-continue: the client waits for the response.
	io.WriteString(c, "GET /100 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to a request waiting for 100 Continue: %v", err)
	}
	io.ReadAll(resp.Body)
	// A body sent whole, then a request without one, on a new connection
	// (net/http closes the first: its body was never read).
	c2 := dial(t, addr)
	br = bufio.NewReader(c2)
	io.WriteString(c2, "GET /4098 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	io.WriteString(c2, "GET /4098 HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); !bytes.Equal(b, pattern(4098)) {
			t.Fatalf("response %d: %d bytes", i, len(b))
		}
	}
	waitFor(t, func() bool { return len(conns()) == 2 })
	cc := conns()[1]
	waitFor(t, func() bool { return sends(cc) == 3 }) // two for the first response, one for the second
}
