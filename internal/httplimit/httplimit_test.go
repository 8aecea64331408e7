package httplimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serve runs h under l on a loopback listener until the test ends and
// returns its address and the limited listener.
func serve(t *testing.T, h http.Handler, l Limits) (string, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(h, l, slog.New(slog.DiscardHandler))
	lim := Listen(srv, ln, l.MaxConns)
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), lim
}

func short() Limits {
	return Limits{MaxConns: 100, HeaderTimeout: 300 * time.Millisecond,
		BodyTimeout: 300 * time.Millisecond, IdleTimeout: time.Second}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads c until it is closed (or reset) and fails if that
// takes longer than d. It returns what was read.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d + 5*time.Second))
	b, err := io.ReadAll(c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	if took := time.Since(start); err != nil || took > d {
		t.Fatalf("connection closed after %v (err %v); want within %v", took, err, d)
	}
	return string(b)
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// TestHeldBodyClosed: a request that declares 100000 bytes and sends 10 is
// answered and closed within the body timeout, whether the handler reads
// the body or not. Without Bodies net/http waits for the body forever.
func TestHeldBodyClosed(t *testing.T) {
	reads := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); !errors.Is(err, ErrBodyTimeout) {
			t.Errorf("body read: %v; want ErrBodyTimeout", err)
		}
		w.WriteHeader(http.StatusRequestTimeout)
	})
	for name, h := range map[string]http.Handler{"ignored": ok, "read": reads} {
		t.Run(name, func(t *testing.T) {
			addr, _ := serve(t, h, short())
			c := dial(t, addr)
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
			closedWithin(t, c, 2*time.Second)
		})
	}
}

// TestSlowHeadersClosed: headers sent one byte at a time, slower than the
// header timeout allows, are cut off.
func TestSlowHeadersClosed(t *testing.T) {
	addr, _ := serve(t, ok, short())
	c := dial(t, addr)
	start := time.Now()
	go func() {
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") {
			if _, err := c.Write([]byte{b}); err != nil || time.Since(start) > 5*time.Second {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	closedWithin(t, c, 2*time.Second)
}

// TestUploadRenewed: an upload whose bytes keep arriving outlives the body
// timeout several times over; once it stalls it is ended within it, and a
// long handler after a complete body is not cut off by the deadline.
func TestUploadRenewed(t *testing.T) {
	l := short()
	got := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Upload(r)
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			time.Sleep(3 * l.BodyTimeout) // work after the body: not cancelled
			err = r.Context().Err()
		}
		got <- err
		fmt.Fprint(w, n)
	})
	addr, _ := serve(t, h, l)

	c := dial(t, addr)
	const chunks = 12 // 12 × 100 ms = 4 body timeouts
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", chunks)
	for range chunks {
		time.Sleep(100 * time.Millisecond)
		c.Write([]byte("x"))
	}
	if err := <-got; err != nil {
		t.Fatalf("a live upload: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("live upload: %v %v", resp, err)
	}

	c = dial(t, addr)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	time.Sleep(100 * time.Millisecond)
	c.Write([]byte("def")) // then stall
	closedWithin(t, c, 2*time.Second)
	if err := <-got; !errors.Is(err, ErrBodyTimeout) {
		t.Fatalf("stalled upload: %v; want ErrBodyTimeout", err)
	}
}

// TestMaxConns: with the cap held, one more connection is refused with a
// 503 at once (never left waiting); once a held connection ends, a new one
// is served again.
func TestMaxConns(t *testing.T) {
	l := short()
	l.MaxConns = 5
	l.HeaderTimeout = time.Minute // held connections stay for the test
	addr, lim := serve(t, ok, l)
	held := make([]net.Conn, l.MaxConns)
	for i := range held {
		held[i] = dial(t, addr)
		held[i].Write([]byte("GET / HTTP/1.1\r\n"))
	}
	waitOpen(t, lim, int64(l.MaxConns))
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := closedWithin(t, c, 2*time.Second); got != "" && !strings.HasPrefix(got, "HTTP/1.1 503 ") {
		t.Fatalf("over the cap: %q; want a 503 or a closed connection", got)
	}
	if _, refused, _ := Open(lim); refused != 1 {
		t.Fatalf("refused %d; want 1", refused)
	}
	held[0].Close()
	waitOpen(t, lim, int64(l.MaxConns-1))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after one closed: %v %v", resp, err)
	}
	resp.Body.Close()
}

func waitOpen(t *testing.T, ln net.Listener, want int64) {
	t.Helper()
	for i := 0; ; i++ {
		if open, _, _ := Open(ln); open == want {
			return
		} else if i > 200 {
			t.Fatalf("open connections %d; want %d", open, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBodylessMethod: a GET that declares a body it never sends is
// answered at once, without waiting for the body, and its connection
// closed; a long response to it is not cut off by the body timeout.
func TestBodylessMethod(t *testing.T) {
	l := short()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first "))
		http.NewResponseController(w).Flush()
		time.Sleep(3 * l.BodyTimeout)
		if err := r.Context().Err(); err != nil {
			t.Errorf("context: %v", err)
		}
		w.Write([]byte("last"))
	})
	addr, _ := serve(t, h, l)
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
	start := time.Now()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || time.Since(start) > l.BodyTimeout {
		t.Fatalf("answer after %v: %v", time.Since(start), err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "first last" || !resp.Close {
		t.Fatalf("body %q, %v, close %v", b, err, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v; want the connection closed", err)
	}
}
