package server

import (
	"fmt"
	"syscall"

	"github.com/cairnhq/cairn/internal/httplimit"
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
