package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// watchdog is an http.RoundTripper that fails a request with errStalled
// when it makes no progress for timeout: while its body is being sent (no
// read of the request body for timeout) or within any one read of the
// response body. The wait for response headers is bounded by the inner
// transport's ResponseHeaderTimeout. A slow reader of the response is not
// a stall: only time spent inside Read counts.
type watchdog struct {
	rt      http.RoundTripper
	timeout time.Duration
}

func (w watchdog) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	req = req.WithContext(ctx)
	stall := func() { cancel(errStalled) }
	var send *sendTimer
	if req.Body != nil && req.Body != http.NoBody {
		send = &sendTimer{timer: time.AfterFunc(w.timeout, stall), timeout: w.timeout}
		req.Body = &sendBody{req.Body, send}
		if get := req.GetBody; get != nil { // the transport may resend the body
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := get()
				send.rearm()
				return &sendBody{b, send}, err
			}
		}
	}
	resp, err := w.rt.RoundTrip(req)
	if send != nil {
		send.stop(true)
	}
	if err != nil {
		err = stalled(ctx, err)
		cancel(nil)
		return nil, err
	}
	recv := time.AfterFunc(w.timeout, stall)
	recv.Stop() // armed only inside Read
	resp.Body = &recvBody{rc: resp.Body, ctx: ctx, cancel: cancel, timer: recv, timeout: w.timeout}
	return resp, nil
}

// sendTimer fires when the transport has taken nothing of the request body
// for timeout. Once the response is in, it stays off.
type sendTimer struct {
	mu      sync.Mutex
	timer   *time.Timer
	timeout time.Duration
	done    bool
}

func (t *sendTimer) rearm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		t.timer.Reset(t.timeout)
	}
}

func (t *sendTimer) stop(done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timer.Stop()
	t.done = t.done || done
}

// sendBody re-arms the timer whenever the transport takes more of the
// request body, and disarms it at the end, when ResponseHeaderTimeout
// takes over.
type sendBody struct {
	io.ReadCloser
	t *sendTimer
}

func (b *sendBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.t.stop(false)
	} else {
		b.t.rearm()
	}
	return n, err
}

// recvBody arms the stall timer for the duration of each Read.
type recvBody struct {
	rc      io.ReadCloser
	ctx     context.Context // the request's
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
}

func (b *recvBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		err = stalled(b.ctx, err)
	}
	return n, err
}

func (b *recvBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// stalled makes err, an error of a request with context ctx, wrap errStalled
// if the watchdog cancelled the request.
func stalled(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errStalled) && !errors.Is(err, errStalled) {
		return fmt.Errorf("%w: %w", errStalled, err)
	}
	return err
}
