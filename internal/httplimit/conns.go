package httplimit

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Listen returns ln limited to max connections open at once on srv. It
// counts a connection from its Accept until srv reports it closed or
// hijacked (through srv.ConnState, which it chains), so call it before
// anything else wraps srv.ConnState's connections, and serve srv on the
// listener it returns (or on a wrapper of it, such as edge.Coalesce's).
// A connection over max is answered 503 and closed at once: a client is
// refused, never kept waiting. The accepted connections are ln's own.
func Listen(srv *http.Server, ln net.Listener, max int) net.Listener {
	l := &limitListener{Listener: ln, max: int64(max)}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed || s == http.StateHijacked {
			l.open.Add(-1)
		}
		if prev != nil {
			prev(c, s)
		}
	}
	return l
}

type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused atomic.Int64
}

// overCap is the answer to a connection over the cap. It is written before
// the request is read, so it asks the client to close.
const overCap = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 37\r\n" +
	"\r\n" +
	"too many connections; try again soon\n"

// refuseWrite bounds the write of overCap (it fits a new socket's buffer).
const refuseWrite = time.Second

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return c, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		c.SetWriteDeadline(time.Now().Add(refuseWrite))
		c.Write([]byte(overCap))
		c.Close()
	}
}

// Open reports the connections a Listen listener counts as open, and
// those it refused so far; ok is false for any other listener.
func Open(ln net.Listener) (open, refused int64, ok bool) {
	l, ok := ln.(*limitListener)
	if !ok {
		return 0, 0, false
	}
	return l.open.Load(), l.refused.Load(), true
}
