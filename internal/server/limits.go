package server

import (
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/metrics"
)

// maxMaxConns bounds --max-conns.
const maxMaxConns = 1 << 20

// fdReserve is the file descriptors kept for everything but client
// connections: the database, blob files, staging, logs.
const fdReserve = 256

// limits returns the limits of each of n listeners. --max-conns 0 (auto)
// is httplimit.DefaultMaxConns, or less so that n listeners full of
// connections fit the open-file limit with fdReserve to spare: edge and
// API share that limit, and a listener that cannot accept is worse than
// one that refuses. An explicit --max-conns that does not fit is an error.
// (Go raises the soft open-file limit to the hard one at start.)
func (c *Config) limits(n int) (httplimit.Limits, error) {
	l := httplimit.Limits{MaxConns: c.MaxConns, HeaderTimeout: c.HeaderTimeout,
		BodyTimeout: c.BodyTimeout, IdleTimeout: c.IdleTimeout}
	fds, known := openFileLimit()
	switch {
	case !known || n == 0:
		if l.MaxConns == 0 {
			l.MaxConns = httplimit.DefaultMaxConns
		}
	case l.MaxConns == 0:
		l.MaxConns = max(16, min(httplimit.DefaultMaxConns, int((fds-fdReserve)/int64(n))))
	case int64(l.MaxConns)*int64(n)+fdReserve > fds:
		return l, fmt.Errorf("--max-conns: %d connections on each of %d listeners need about %d open files; the limit (ulimit -n) is %d",
			l.MaxConns, n, l.MaxConns*n+fdReserve, fds)
	}
	return l, nil
}

// openFileLimit returns the soft RLIMIT_NOFILE, if known.
func openFileLimit() (int64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 {
		return 0, false
	}
	return int64(r.Cur), true
}

// connCaps are the capped listeners of a process, by name, reported in
// its metrics:
//
//	cairn_http_connections_open{listener} (gauge)
//	cairn_http_connections_refused_total{listener} (counter: over the cap)
type connCaps struct {
	m    *metrics.Metrics
	l    httplimit.Limits
	lns  map[string]net.Listener
	once bool
}

// listen limits ln to the connection cap on srv (httplimit.Listen) and
// reports it as listener name.
func (c *connCaps) listen(srv *http.Server, ln net.Listener, name string) net.Listener {
	lim := httplimit.Listen(srv, ln, c.l.MaxConns)
	if c.lns == nil {
		c.lns = map[string]net.Listener{}
	}
	c.lns[name] = lim
	c.m.Gauge(`cairn_http_connections_open{listener="`+name+`"}`, func() float64 {
		open, _, _ := httplimit.Open(lim)
		return float64(open)
	})
	if !c.once { // one writer for the family: one # TYPE line
		c.once = true
		c.m.Counters(func() map[string]uint64 {
			out := map[string]uint64{}
			for name, ln := range c.lns {
				_, refused, _ := httplimit.Open(ln)
				out[`cairn_http_connections_refused_total{listener="`+name+`"}`] = uint64(refused)
			}
			return out
		})
	}
	return lim
}
