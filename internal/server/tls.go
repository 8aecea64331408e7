package server

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/cairnhq/cairn/internal/certs"
	"github.com/cairnhq/cairn/internal/edge"
	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/metrics"
)

// edgeTLS serves the edge on ln (--edge-tls-addr) and returns its role (the edge over TLS,
// HTTP/2 and HTTP/1.1) and the handler of the plain edge listener, which
// answers ACME HTTP-01 challenges before the edge. Certificates are shared
// by every edge process through the metadata store.
func (p *process) edgeTLS(cfg Config, ln net.Listener, store meta.Full, ed *edge.Edge, m *metrics.Metrics,
	limits httplimit.Limits, caps *connCaps) (role, http.Handler, error) {
	var roots *x509.CertPool
	if cfg.ACMERoot != "" {
		pem, err := os.ReadFile(cfg.ACMERoot)
		if err != nil {
			return role{}, nil, fmt.Errorf("--acme-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return role{}, nil, fmt.Errorf("--acme-root: %s: no PEM certificate", cfg.ACMERoot)
		}
	}
	mgr, err := certs.New(certs.Config{Certs: store, Domains: store, CA: cfg.ACMECA, Email: cfg.ACMEEmail,
		Roots: roots, HTTPAddr: p.edgeAddr, TLSAddr: p.edgeTLSAddr})
	if err != nil {
		return role{}, nil, err
	}
	p.closers = append(p.closers, func() error { mgr.Stop(); return nil })
	srv := httplimit.Server(cfg.access("edge-tls", cfg.Logger, m.HTTP("edge-tls", ed)), limits, cfg.Logger)
	srv.TLSConfig = mgr.TLSConfig()
	// The cap counts the raw connections; CoalesceTLS wraps them after it,
	// under TLS.
	tln := edge.CoalesceTLS(srv, caps.listen(srv, ln, "edge-tls"), srv.TLSConfig)
	return serveRole("edge-tls", srv, tln), mgr.Handler(ed), nil
}
