package httplimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ErrBodyTimeout: a request body did not arrive in time. A read of a body
// under Bodies that passes its deadline returns an error wrapping it (and
// os.ErrDeadlineExceeded).
var ErrBodyTimeout = errors.New("the request body did not arrive in time")

// Bodies bounds the time the request body of each request h serves may
// take to arrive: timeout from the start of the handler, or, once the
// handler calls Upload, timeout between reads that bring bytes. The
// deadline is on the connection's reads, so it also ends net/http's own
// wait for a body the handler did not read (it reads up to 256 KiB of it
// before it answers). Once the body is read to its end the deadline is
// lifted: net/http's background read, which watches for the client going
// away, must not end a long handler (so a handler that answers a body it
// leaves unread within timeout must not run longer than that). A GET,
// HEAD or DELETE with a body is answered without reading it and its
// connection closed. Requests without a body, and ResponseWriters without
// SetReadDeadline, are served as they are.
func Bodies(h http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		now := time.Now()
		if rc.SetReadDeadline(now.Add(timeout)) != nil {
			h.ServeHTTP(w, r)
			return
		}
		if bodyless(r.Method) {
			// No handler reads it: answer at once and close, rather than
			// read the body before answering. The deadline bounds only
			// net/http's drain of it after the handler: nothing reads the
			// body to its end, so no background read starts under it.
			w.Header().Set("Connection", "close")
			h.ServeHTTP(w, r)
			return
		}
		b := &body{ReadCloser: r.Body, rc: rc, timeout: timeout, renewed: now}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

type bodyKey struct{}

// Upload marks r's body as an upload: its deadline is renewed while bytes
// arrive, so a large body on a slow link may take as long as it needs,
// but a stalled one is ended after the body timeout. Call it before the
// first read of the body. Without Bodies it does nothing.
func Upload(r *http.Request) {
	if b, ok := r.Context().Value(bodyKey{}).(*body); ok && !b.done {
		b.upload = true
		b.renew(time.Now())
	}
}

// body is a request body under a read deadline. Reads happen on one
// goroutine (the handler's), as net/http asks of request bodies.
type body struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	upload  bool      // renewed on progress
	renewed time.Time // last renewal
	done    bool      // read to its end: the deadline is lifted
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		if !b.done {
			b.done = true
			b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (%s): %w", ErrBodyTimeout, b.timeout, err)
	case n > 0 && b.upload:
		// Renewing costs a timer update: do it once per 1/16 of the timeout.
		if now := time.Now(); now.Sub(b.renewed) >= b.timeout/16 {
			b.renew(now)
		}
	}
	return n, err
}

func (b *body) renew(now time.Time) {
	b.renewed = now
	b.rc.SetReadDeadline(now.Add(b.timeout))
}

// bodyless reports whether no handler reads the body of method.
func bodyless(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete
}
