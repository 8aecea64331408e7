package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Coalesce makes srv send each small response in one write. net/http writes
// a response through a 4 KiB buffer, so a response of a few KiB (a typical
// hot file) costs two write calls, and on a busy edge the second one is as
// dear as the first: each runs the TCP send path and wakes the client.
// The connections Coalesce's listener accepts hold writes (up to
// coalesceLimit bytes) until the response is complete, which net/http
// shows by setting the write deadline and reports through srv.ConnState
// (StateIdle), and send them in one call.
//
// Held bytes also go out, before anything else, when more than
// coalesceLimit bytes are written (one writev of held and new bytes), on
// sendfile, and on close. A hijacked connection holds nothing, and neither
// does the response to a request with a body: net/http may read that body
// after the response (and a client waiting for 100 Continue sends it only
// once it sees one or the response), so holding would stall both sides.
// Reads do not send held bytes: net/http's background reader may enter
// Read in the middle of a response.
//
// Call Coalesce once srv.Handler is set (it wraps it), and serve srv over
// HTTP/1.1 only: HTTP/2 does not report the end of each response (over
// TLS, CoalesceTLS tells the two apart).
func Coalesce(srv *http.Server, ln net.Listener) net.Listener {
	wrap(srv)
	return coalescingListener{Listener: ln}
}

// CoalesceTLS is Coalesce under TLS: it returns the TLS listener of
// config over ln whose raw connections hold the TLS records of a response
// (net/http writes a small response as two records, header and body) and
// send them in one write, like Coalesce's. A connection holds nothing
// until it has answered its first request over HTTP/1.1 (the handshake
// goes out as crypto/tls writes it), and nothing ever if it speaks
// HTTP/2, whose end of response net/http does not report. crypto/tls
// passes SetWriteDeadline, which ends each response, and Close through
// to the raw connection.
func CoalesceTLS(srv *http.Server, ln net.Listener, config *tls.Config) net.Listener {
	wrap(srv)
	return tls.NewListener(coalescingListener{Listener: ln, tls: true}, config)
}

// wrap installs the hooks that end holding: the end of each response
// (StateIdle), a hijack, and a request with a body.
func wrap(srv *http.Server) {
	prevState, prevCtx, h := srv.ConnState, srv.ConnContext, srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if cc := coalesced(c, s == http.StateIdle); cc != nil {
			switch s {
			case http.StateIdle:
				cc.writeThrough(false)
			case http.StateHijacked:
				cc.writeThrough(true)
			}
		}
		if prevState != nil {
			prevState(c, s)
		}
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		if cc, _ := under(c); cc != nil { // a request with a body writes through, whatever the protocol
			ctx = context.WithValue(ctx, connKey{}, cc)
		}
		return ctx
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			if cc, ok := r.Context().Value(connKey{}).(*coalescedConn); ok {
				cc.writeThrough(true)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// coalesced is the coalescedConn under c, a connection srv serves: c
// itself, or the raw connection of a *tls.Conn. Under TLS, at the end of
// a response (idle), it decides once whether the connection may hold:
// when it speaks HTTP/1.1. Until then, and for HTTP/2, it returns nil.
func coalesced(c net.Conn, idle bool) *coalescedConn {
	cc, tc := under(c)
	if cc == nil || tc == nil {
		return cc
	}
	switch cc.proto.Load() {
	case protoHTTP1:
		return cc
	case protoUnknown:
		if idle { // the handshake is complete: a response was served
			if tc.ConnectionState().NegotiatedProtocol == "h2" {
				cc.proto.Store(protoHTTP2)
				return nil
			}
			cc.proto.Store(protoHTTP1)
			return cc
		}
	}
	return nil
}

// under is the coalescedConn under c (c itself, or the raw connection of
// a *tls.Conn, then returned too); nil if there is none.
func under(c net.Conn) (*coalescedConn, *tls.Conn) {
	if cc, ok := c.(*coalescedConn); ok {
		return cc, nil
	}
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*coalescedConn); ok {
			return cc, tc
		}
	}
	return nil, nil
}

// The protocol of a connection under TLS, as far as Coalesce knows it.
const (
	protoUnknown = iota
	protoHTTP1
	protoHTTP2
)

type connKey struct{}

// coalesceLimit is the most a connection holds: responses up to about this
// size (headers included) go out in one write.
const coalesceLimit = 32 << 10

var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceLimit); return &b }}

type coalescingListener struct {
	net.Listener
	tls bool // under TLS: hold nothing until the protocol is known
}

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	cc := &coalescedConn{TCPConn: tc, through: l.tls}
	if !l.tls {
		cc.proto.Store(protoHTTP1)
	}
	return cc, nil
}

type coalescedConn struct {
	*net.TCPConn
	mu      sync.Mutex   // held across writes, to keep the bytes in order
	held    *[]byte      // pooled; nil while nothing is held
	through bool         // writes go straight out: a request with a body, or a hijack
	err     error        // a failed send of held bytes, returned by later calls
	sends   int          // write calls made, for tests
	proto   atomic.Int32 // protoUnknown (under TLS, until decided), protoHTTP1 or protoHTTP2
}

func (c *coalescedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.held == nil {
		if c.through || len(p) >= coalesceLimit {
			c.sends++
			return c.TCPConn.Write(p)
		}
		c.held = heldBufs.Get().(*[]byte)
	}
	if len(*c.held)+len(p) <= coalesceLimit {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	n := len(*c.held)
	bufs := net.Buffers{*c.held, p}
	c.sends++
	w, err := bufs.WriteTo(c.TCPConn) // one writev
	c.release()
	if err != nil {
		c.err = err
	}
	return max(0, int(w)-n), err
}

// flush sends what the connection holds.
func (c *coalescedConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *coalescedConn) flushLocked() error {
	if c.err != nil || c.held == nil {
		return c.err
	}
	c.sends++
	_, err := c.TCPConn.Write(*c.held)
	c.release()
	if err != nil {
		// The response is lost: close the connection so that the server's
		// next read fails and the client sees a reset, not a hang.
		c.err = err
		c.TCPConn.Close()
	}
	return err
}

func (c *coalescedConn) release() {
	*c.held = (*c.held)[:0]
	heldBufs.Put(c.held)
	c.held = nil
}

// writeThrough sends what is held and, with on, lets the rest of the
// response go straight out; with off, the next response is held again.
// net/http reports no end of response on a hijacked connection, so one
// set on by its hijack stays on.
func (c *coalescedConn) writeThrough(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.through = on
}

// SetWriteDeadline sends what is held first. net/http sets the write
// deadline right after it finishes a response, while the connection still
// counts as active, so a graceful shutdown waits for the held bytes instead
// of closing the connection under them (the StateIdle hook, which net/http
// documents, is the fallback). Sending early is always correct: it only
// coalesces less.
func (c *coalescedConn) SetWriteDeadline(t time.Time) error {
	c.flush()
	return c.TCPConn.SetWriteDeadline(t)
}

// ReadFrom keeps sendfile for large files, after what is held.
func (c *coalescedConn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.TCPConn.ReadFrom(r)
}

func (c *coalescedConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	return c.TCPConn.CloseWrite()
}

// closeFlush bounds how long Close waits for a client to take held bytes.
const closeFlush = 5 * time.Second

// Close sends what is held, waiting at most closeFlush for the client,
// unless a write is under way on another goroutine (a server closing its
// connections): closing the socket ends that write.
func (c *coalescedConn) Close() error {
	if c.mu.TryLock() {
		if c.held != nil {
			c.TCPConn.SetWriteDeadline(time.Now().Add(closeFlush))
			c.flushLocked()
		}
		c.mu.Unlock()
	}
	return c.TCPConn.Close()
}
