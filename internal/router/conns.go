package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// The router's own HTTP/1.1 client, for the common request: an idempotent
// method without a body that is not an upgrade (direct). It writes the
// request and reads the response head in the calling goroutine, over a
// keep-alive connection of the instance's own idle stack. http.Transport
// hands each request to a connection's write goroutine and each response
// back from its read goroutine; under load those hand-offs and the
// wake-ups they cost were a large part of the router's CPU time per
// request (docs/performance.md). Requests with a body, whose body must
// stream while the response may already arrive, and upgrades, whose
// connection becomes the client's, keep using http.Transport.
//
// What it keeps of http.Transport: the request as Request.Write writes it
// (Transport's form), 1xx responses passed to the proxy's client trace
// (103 Early Hints), a response head bounded by maxHeaderBytes, a request
// on a kept-alive connection the instance had closed sent again on a
// fresh one (it got no byte back: the instance did not process it), the
// client leaving ends the exchange (the connection is closed), idle
// connections closed after IdleConnTimeout and when their instance leaves
// the table.
const (
	IdleConnTimeout = 90 * time.Second
	maxHeaderBytes  = 1 << 20
	max1xx          = 5
	connBufSize     = 16 << 10
)

// direct reports whether req may go over the router's own client.
func direct(req *http.Request) bool {
	return (req.Body == nil || req.Body == http.NoBody) && idempotent(req.Method) && req.Header["Upgrade"] == nil
}

// clientConn is one keep-alive connection to an instance.
type clientConn struct {
	nc     net.Conn
	br     *bufio.Reader // reads through the clientConn (limit, got)
	bw     *bufio.Writer
	limit  int64 // bytes that may still be read; bounds a response head
	got    bool  // a byte of the current response arrived
	idleAt time.Time
}

func (cc *clientConn) Read(p []byte) (int, error) {
	if cc.limit <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > cc.limit {
		p = p[:cc.limit]
	}
	n, err := cc.nc.Read(p)
	cc.limit -= int64(n)
	if n > 0 {
		cc.got = true
	}
	return n, err
}

var errHeadTooLarge = errors.New("router: response head too large")

// idleConns is an instance's stack of idle connections (the most recently
// used on top: it is the least likely to have been closed by the
// instance).
type idleConns struct {
	mu     sync.Mutex
	conns  []*clientConn
	closed bool // the instance left the table: keep nothing
}

func (ic *idleConns) get() *clientConn {
	now := time.Now()
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for len(ic.conns) > 0 {
		cc := ic.conns[len(ic.conns)-1]
		ic.conns[len(ic.conns)-1] = nil
		ic.conns = ic.conns[:len(ic.conns)-1]
		if now.Sub(cc.idleAt) < IdleConnTimeout {
			return cc
		}
		cc.nc.Close()
	}
	return nil
}

func (ic *idleConns) put(cc *clientConn) {
	cc.idleAt = time.Now()
	ic.mu.Lock()
	if ic.closed || len(ic.conns) >= MaxIdlePerIns {
		ic.mu.Unlock()
		cc.nc.Close()
		return
	}
	ic.conns = append(ic.conns, cc)
	ic.mu.Unlock()
}

// sweep closes the connections idle since before cutoff; close (all)
// closes every one and keeps none from now on.
func (ic *idleConns) sweep(cutoff time.Time, all bool) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	keep := ic.conns[:0]
	for _, cc := range ic.conns {
		if all || cc.idleAt.Before(cutoff) {
			cc.nc.Close()
			continue
		}
		keep = append(keep, cc)
	}
	clear(ic.conns[len(keep):])
	ic.conns = keep
	if all {
		ic.closed = true
	}
}

// send makes the exchange of req with instance b over one of its idle
// connections, or a new one. A failed connect is a *connectError.
func (rt *Router) send(req *http.Request, b *backend) (*http.Response, error) {
	ctx := req.Context()
	for {
		cc := b.idle.get()
		reused := cc != nil
		if cc == nil {
			nc, err := rt.dial(ctx, "tcp", b.addr)
			if err != nil {
				return nil, err
			}
			cc = &clientConn{nc: nc}
			cc.br = bufio.NewReaderSize(cc, connBufSize)
			cc.bw = bufio.NewWriterSize(nc, connBufSize)
		}
		resp, err := cc.exchange(req, b)
		if err == nil {
			return resp, nil
		}
		cc.nc.Close()
		if !reused || cc.got || ctx.Err() != nil {
			return nil, err
		}
		// The instance had closed this kept-alive connection: it did not
		// take the request. Send it on another.
	}
}

// aLongTimeAgo is a deadline in the past: it ends any I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes req and reads the response head; the response's body
// reads the rest and puts the connection back when it was read to its end.
func (cc *clientConn) exchange(req *http.Request, b *backend) (*http.Response, error) {
	ctx := req.Context()
	cc.got = false
	cc.limit = maxHeaderBytes
	stop := context.AfterFunc(ctx, func() { cc.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(cc.bw); err != nil {
		return fail(err)
	}
	if err := cc.bw.Flush(); err != nil {
		return fail(err)
	}
	var resp *http.Response
	for n := 0; ; n++ {
		var err error
		resp, err = http.ReadResponse(cc.br, req)
		if err != nil {
			return fail(err)
		}
		code := resp.StatusCode
		if code < 100 || code >= 200 {
			break
		}
		if code == http.StatusSwitchingProtocols || n == max1xx {
			return fail(errors.New("router: unexpected informational response " + resp.Status))
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
		}
		cc.limit = maxHeaderBytes
	}
	cc.limit = 1<<63 - 1
	resp.Body = &connBody{rc: resp.Body, cc: cc, b: b, stop: stop,
		eof: resp.Body == http.NoBody, reuse: !resp.Close}
	return resp, nil
}

// connBody is a response body read from a clientConn. Closed after its
// end, it puts the connection back on its instance's idle stack; closed
// before (the client left), it closes the connection rather than read the
// rest.
type connBody struct {
	rc         io.ReadCloser
	cc         *clientConn
	b          *backend
	stop       func() bool
	eof, reuse bool
	done       bool
}

func (cb *connBody) Read(p []byte) (int, error) {
	if cb.done {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := cb.rc.Read(p)
	if err == io.EOF {
		cb.eof = true
	}
	return n, err
}

func (cb *connBody) Close() error {
	if cb.done {
		return nil
	}
	cb.done = true
	// stop is false when the client left: the deadline is set, or about
	// to be.
	if cb.stop() && cb.eof && cb.reuse {
		cb.b.idle.put(cb.cc)
		return nil
	}
	return cb.cc.nc.Close()
}
