package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/siterules"
)

// Bounds of a proxied request (a _redirects rule rewriting, 200, to an
// external URL; see docs/design.md, "Site rules").
const (
	proxyDialTimeout = 5 * time.Second
	proxyTLSTimeout  = 10 * time.Second
	// DefaultProxyTimeout bounds the wait for the target's response
	// headers (Netlify's proxies give up after 26 s).
	DefaultProxyTimeout = 30 * time.Second
	proxyMaxHeaderBytes = 1 << 20
)

// errPrivateTarget: a proxy target resolved to an address the edge does
// not connect to without Config.ProxyAllowPrivate.
var errPrivateTarget = errors.New("edge: proxy target is a loopback, private, link-local or otherwise internal address")

// proxyTarget carries the target URL of a matched rule to the rewrite.
type proxyTarget struct{}

// newProxy returns the reverse proxy of proxy rules: http and https
// targets only, no proxy from the environment, no compression asked of the
// target, bounded dials, handshakes and waits for headers. Unless
// allowPrivate, it connects only to public addresses, checked on the
// address actually dialled (after DNS), so a name resolving to 127.0.0.1
// or 169.254.169.254 is refused too.
func newProxy(log *slog.Logger, allowPrivate bool, timeout time.Duration) *httputil.ReverseProxy {
	d := &net.Dialer{Timeout: proxyDialTimeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = refusePrivate
	}
	if timeout <= 0 {
		timeout = DefaultProxyTimeout
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    32,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    proxyTLSTimeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: proxyMaxHeaderBytes,
		DisableCompression:     true, // the client's Accept-Encoding is passed on as is
	}
	return &httputil.ReverseProxy{
		Rewrite:        rewriteProxy,
		Transport:      tr,
		ModifyResponse: proxyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header()["Cache-Control"] = cacheNoStore
			problem.Write(w, r, log, problem.ProxyFailed(err)) // logged with the request id
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// rewriteProxy makes the outbound request: the rule's URL (path and query
// as the rule made them), the target's own Host, X-Forwarded-For, -Host
// and -Proto set by the edge (any the client sent are dropped). The
// hop-by-hop headers are stripped by ReverseProxy both ways.
func rewriteProxy(pr *httputil.ProxyRequest) {
	u := pr.In.Context().Value(proxyTarget{}).(*url.URL)
	pr.Out.URL = u
	pr.Out.Host = ""
	pr.SetXForwarded()
	for k := range pr.Out.Header {
		if strings.HasPrefix(k, "X-Cairn-") {
			delete(pr.Out.Header, k)
		}
	}
}

// proxyResponse drops X-Cairn-* headers of the target: those of a
// response are the edge's.
func proxyResponse(res *http.Response) error {
	for k := range res.Header {
		if strings.HasPrefix(k, "X-Cairn-") {
			delete(res.Header, k)
		}
	}
	return nil
}

// refusePrivate is the dialer's Control: it refuses loopback, private,
// link-local, unspecified, multicast and shared (100.64/10) addresses.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", errPrivateTarget, address)
	}
	if a := ap.Addr().Unmap(); !publicAddr(a) {
		return fmt.Errorf("%w: %s", errPrivateTarget, a)
	}
	return nil
}

var sharedRange = netip.MustParsePrefix("100.64.0.0/10")

func publicAddr(a netip.Addr) bool {
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !sharedRange.Contains(a)
}

// serveProxy answers a request with a matched proxy rule: proxied when the
// deployment allows it (proxy_rewrites), else the site's 404 page (405 for
// a method other than GET and HEAD). The setting is checked here, at serve
// time, so that turning it off stops the proxying at once. _headers do not
// apply to a proxied response (as on Netlify): the target sets its own.
func (e *Edge) serveProxy(w http.ResponseWriter, r *http.Request, rt *route, m siterules.Match) {
	if !rt.proxy {
		e.log.Debug("edge: proxy rule ignored: proxy_rewrites is off", "deployment", rt.depID, "line", m.Line)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e.notAllowed(w, r)
			return
		}
		e.notFound(w, r, rt)
		return
	}
	u, err := url.Parse(m.Location)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		// only a query the client sent can make it so (the rule's part was
		// checked at publish time)
		page(w, r, http.StatusBadRequest)
		return
	}
	if cc, ok := r.Context().Value(connKey{}).(*coalescedConn); ok {
		w = &flushThrough{ResponseWriter: w, cc: cc} // a streamed answer is not held back
	}
	ctx := context.WithValue(r.Context(), proxyTarget{}, u)
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// serveProxyOnly answers a request with a method other than GET and HEAD
// for a static site with proxy rules: proxied if the first rule matching
// its path is a proxy rule (a file at the path shadows rules without
// "!", as for GET), else 405.
func (e *Edge) serveProxyOnly(w http.ResponseWriter, r *http.Request, rt *route) {
	p := r.URL.Path
	if strings.IndexByte(p, 0) >= 0 {
		page(w, r, http.StatusBadRequest)
		return
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	clean := path.Clean(p)
	_, _, found := e.resolveFile(rt, p, clean)
	if m, ok := rt.rules.Redirect(clean, r.URL.RawQuery, found); ok && m.Proxy {
		e.serveProxy(w, r, rt, m)
		return
	}
	e.notAllowed(w, r)
}
