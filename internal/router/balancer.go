package router

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// connectError is a failed connect to an instance: nothing of the request
// was sent, so any method may be retried on another instance.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// balancer is the proxy's RoundTripper: it picks an instance of the
// request's pool for each attempt and retries as the package comment says.
type balancer struct{ rt *Router }

func (bl *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	p, _ := req.Context().Value(poolKey{}).(*pool)
	if p == nil {
		return nil, errNoInstance
	}
	body := req.Body
	if body != nil && body != http.NoBody {
		// The transport closes the body it was given even when the connect
		// failed; keep it open for another attempt.
		body = &keptBody{ReadCloser: body}
		defer req.Body.Close()
	}
	var tried []*backend
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		b := p.pick(tried)
		if b == nil {
			break
		}
		if len(tried) > 0 {
			bl.rt.counts.retries.Add(1)
		}
		tried = append(tried, b)
		out := *req
		u := *req.URL
		u.Host = b.addr
		out.URL = &u
		out.Body = body
		b.inflight.Add(1)
		var resp *http.Response
		var err error
		if direct(&out) {
			resp, err = bl.rt.send(&out, b)
		} else {
			resp, err = bl.rt.tr.RoundTrip(&out)
		}
		if err == nil {
			resp.Body = track(resp.Body, b)
			bl.rt.counts.proxied.Add(1)
			return resp, nil
		}
		b.inflight.Add(-1)
		lastErr = err
		var ce *connectError
		switch {
		case req.Context().Err() != nil:
			return nil, err
		case errors.As(err, &ce):
			bl.rt.markDown(b)
			if kb, ok := body.(*keptBody); ok && kb.read {
				return nil, err // cannot happen before a connect; be safe
			}
		case idempotent(req.Method) && (body == nil || body == http.NoBody):
			// Sent, or maybe sent: safe to send again elsewhere.
		default:
			return nil, err
		}
	}
	if lastErr == nil {
		lastErr = errNoInstance
	}
	return nil, lastErr
}

// idempotent methods may be sent twice (RFC 9110, 9.2.2).
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// keptBody is a request body the transport may not close; read reports
// whether any of it was consumed.
type keptBody struct {
	io.ReadCloser
	read bool
}

func (k *keptBody) Read(p []byte) (int, error) {
	k.read = true
	return k.ReadCloser.Read(p)
}

func (k *keptBody) Close() error { return nil }

// track counts the request as in flight on b until its response body is
// closed (the proxy closes it when the copy ends, or when an upgraded
// connection ends).
func track(rc io.ReadCloser, b *backend) io.ReadCloser {
	if rwc, ok := rc.(io.ReadWriteCloser); ok { // a 101 Switching Protocols
		return &trackedConn{ReadWriteCloser: rwc, b: b}
	}
	return &trackedBody{ReadCloser: rc, b: b}
}

type trackedBody struct {
	io.ReadCloser
	b    *backend
	done bool
}

func (t *trackedBody) Close() error {
	if !t.done {
		t.done = true
		t.b.inflight.Add(-1)
	}
	return t.ReadCloser.Close()
}

type trackedConn struct {
	io.ReadWriteCloser
	b    *backend
	done atomic.Bool // closed from either copying goroutine
}

func (t *trackedConn) Close() error {
	if t.done.CompareAndSwap(false, true) {
		t.b.inflight.Add(-1)
	}
	return t.ReadWriteCloser.Close()
}
