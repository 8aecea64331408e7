// Package httplimit bounds what one client can hold of a listener: the
// number of connections open at once (Listen) and the time a request body
// may take to arrive (Bodies, Upload). The time to read request headers
// and the keep-alive idle time are http.Server's own ReadHeaderTimeout and
// IdleTimeout; Server sets all of them from one Limits.
package httplimit

import (
	"log/slog"
	"net/http"
	"time"
)

// Limits of one listener. Zero values are not allowed: use Default.
type Limits struct {
	// MaxConns is the most connections open at once; a connection over
	// it is answered 503 and closed at once.
	MaxConns int
	// HeaderTimeout is the most time a client may take to send a
	// request's headers (http.Server.ReadHeaderTimeout).
	HeaderTimeout time.Duration
	// BodyTimeout is the most time a request body may take to arrive; for
	// an upload (Upload) it is instead the most time between two reads
	// that bring bytes, like nginx's client_body_timeout.
	BodyTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConns      = 4096
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 120 * time.Second
)

// Default returns the default limits.
func Default() Limits {
	return Limits{MaxConns: DefaultMaxConns, HeaderTimeout: DefaultHeaderTimeout,
		BodyTimeout: DefaultBodyTimeout, IdleTimeout: DefaultIdleTimeout}
}

// Server returns an http.Server for h under l: bodies bounded by
// l.BodyTimeout (Bodies), headers by l.HeaderTimeout, idle connections by
// l.IdleTimeout. Serve it over Listen(srv, ln, l.MaxConns).
func Server(h http.Handler, l Limits, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           Bodies(h, l.BodyTimeout),
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
