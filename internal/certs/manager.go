package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultCA is the ACME directory used when Config.CA is empty.
const DefaultCA = certmagic.LetsEncryptProductionCA

// ErrNotRegistered is what the decision answers for a hostname that is no
// registered domain: the handshake fails with a TLS alert and no ACME
// order is made.
var ErrNotRegistered = errors.New("certs: not a registered domain")

// Domains is what the decision needs of the metadata store.
type Domains interface {
	GetDomain(ctx context.Context, hostname string) (*meta.Domain, error)
}

// Config configures a Manager. Certs and Domains are required.
type Config struct {
	Certs   meta.Certs
	Domains Domains
	CA      string         // ACME directory URL; "" means DefaultCA
	Email   string         // ACME account contact; may be ""
	Roots   *x509.CertPool // roots trusted for the CA's directory (tests: Pebble's); nil: the system's
	// HTTPAddr and TLSAddr are the edge's bound listeners: the ACME
	// challenges (HTTP-01 on HTTPAddr through Handler, TLS-ALPN-01 on
	// TLSAddr through TLSConfig) are answered there.
	HTTPAddr, TLSAddr string
	// RenewalWindow is the fraction of a certificate's lifetime left when
	// it is renewed; 0 means certmagic's (1/3).
	RenewalWindow float64
	// RenewCheck is how often certificates are checked for renewal; 0
	// means certmagic's (10 minutes).
	RenewCheck time.Duration
	// OnEvent, if set, hears certmagic's events ("cert_obtaining",
	// "cert_obtained", …).
	OnEvent func(ctx context.Context, event string, data map[string]any) error
	Verbose bool // log certmagic at info level (else warnings only)
}

// Manager obtains, stores, renews and serves certificates.
type Manager struct {
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
}

// New returns a Manager. It does no I/O: certificates are obtained on the
// first handshake for a registered domain (or loaded from the store).
func New(c Config) (*Manager, error) {
	if c.Certs == nil || c.Domains == nil {
		return nil, errors.New("certs: Config.Certs and Config.Domains are required")
	}
	ca := c.CA
	if ca == "" {
		ca = DefaultCA
	}
	level := zap.WarnLevel
	if c.Verbose {
		level = zap.InfoLevel
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), level)).Named("certmagic")
	m := &Manager{}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: c.RenewCheck,
		Logger:             log,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage:            NewStorage(c.Certs),
		RenewalWindowRatio: c.RenewalWindow,
		OnEvent:            c.OnEvent,
		Logger:             log,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(ctx context.Context, name string) error {
			_, err := c.Domains.GetDomain(ctx, strings.ToLower(name))
			if errors.Is(err, meta.ErrNotFound) {
				return fmt.Errorf("%w: %q", ErrNotRegistered, name)
			}
			return err
		}},
	})
	host, httpPort := splitPort(c.HTTPAddr)
	_, tlsPort := splitPort(c.TLSAddr)
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA: ca, Email: c.Email, Agreed: true, TrustedRoots: c.Roots, Logger: log,
		// The edge's own listeners answer the challenges: certmagic's
		// solvers find these ports taken and rely on them.
		ListenHost: host, AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort,
		DisableHTTPChallenge: c.HTTPAddr == "",
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// TLSConfig is the edge's TLS configuration: certificates on demand,
// TLS-ALPN-01 answers, and HTTP/2 then HTTP/1.1 by ALPN.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.cfg.TLSConfig()
	tc.NextProtos = append([]string{"h2", "http/1.1"}, tc.NextProtos...)
	tc.MinVersion = tls.VersionTLS12
	return tc
}

// Handler answers HTTP-01 challenges and passes everything else to next.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Stop stops the renewal loop.
func (m *Manager) Stop() { m.cache.Stop() }

func splitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}
