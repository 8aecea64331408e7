// Package server builds cairn's pieces from a Config and runs the roles
// asked for (api, edge, …) in one process.
package server

import (
	"net"

	"fmt"
	"github.com/cairnhq/cairn/internal/api"
	"log/slog"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/httplimit"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/registry"
	"github.com/cairnhq/cairn/internal/token"
)

// Roles a process can run.
const (
	RoleAPI  = "api"
	RoleEdge = "edge"
	RoleGC   = "gc" // periodic garbage collection (internal/gc)
	// RoleSched is the scheduler (internal/sched): one leader among the
	// processes that run it; the others stand by.
	RoleSched = "sched"
)

// Config is everything `cairn server` takes. Each field has a flag and a
// CAIRN_* environment twin in cmd/cairn.
type Config struct {
	DataDir  string // --data, CAIRN_DATA: SQLite file, blobs, token, staging
	APIAddr  string // --api-addr: API and registry
	EdgeAddr string // --edge-addr
	// EdgeTLSAddr (--edge-tls-addr) serves the edge over TLS (HTTP/2 and
	// HTTP/1.1), with certificates from ACME obtained on demand for
	// registered domains (internal/certs). "" means no TLS listener.
	EdgeTLSAddr string
	// EdgeProxyAllowPrivate (--edge-proxy-allow-private) lets sites' proxy
	// rules reach loopback, private and link-local addresses (edge.Config).
	EdgeProxyAllowPrivate bool
	// EdgeProxyTimeout (--edge-proxy-timeout) bounds the wait for a proxy
	// target's response headers; 0 means edge.DefaultProxyTimeout.
	EdgeProxyTimeout time.Duration
	ACMECA           string   // --acme-ca: ACME directory URL; "" means Let's Encrypt
	ACMEEmail        string   // --acme-email: ACME account contact
	ACMERoot         string   // --acme-root: PEM file of roots trusted for --acme-ca (e.g. a test CA's)
	Database         string   // --database: "" means SQLite in DataDir
	Blobs            string   // --blobs: "" means files under DataDir; NAME=URL,… for regions (regions.go)
	Region           string   // --region: the region read first; "" means the primary
	Roles            []string // --roles: subset of api, edge, gc, sched
	Token            string   // --token, CAIRN_TOKEN: the bootstrap admin token; "" means generate/read DataDir/token
	BaseDomain       string   // --base-domain: edge serves {name}.{base}
	// PublicURL (--public-url) is the edge as users reach it, e.g.
	// https://sites.example.com; records' url and preview_url are made from
	// it. "" means http://{base-domain}:{edge port} (no port for 80), or
	// https://{base-domain}:{TLS port} (no port for 443) with EdgeTLSAddr.
	PublicURL  string
	MaxFiles   int64 // --max-files: entries per upload
	MaxBytes   int64 // --max-bytes: uncompressed bytes per upload
	CacheBytes int64 // --cache-bytes: edge hot-file cache
	MaxPacks   int   // --max-packs: publishes packing and storing at once
	// MetricsAddr (--metrics-addr) serves GET /metrics, /healthz and
	// /readyz on a listener of its own, for processes without the api role;
	// the API listener serves them too. "" means no listener of its own.
	MetricsAddr string
	// MetricsToken (--metrics-token-required) makes GET /metrics need a
	// token with the read or admin scope, on every listener that serves it.
	MetricsToken bool
	Logger       *slog.Logger
	// AccessLog (--access-log, default on) logs one line per request on
	// every listener (internal/httplog); off, requests still get an id.
	AccessLog bool

	RetentionDays int           // --retention-days: retention of deployments created without one
	GCInterval    time.Duration // --gc-interval: between periodic collections (role gc); 0 disables
	GCGrace       time.Duration // --gc-grace: marked → collectable; orphan age; keep > lease.TTL
	GCDrain       time.Duration // --gc-drain: collection committed → bytes deleted

	ReplicaRetry time.Duration // --replica-retry: longest wait between tries of a failed copy; 0: 5m

	// TmpSweepInterval (--tmp-sweep-interval) is how often the temporary
	// files of blob writes are swept; TmpMaxAge (--tmp-max-age) is how long
	// one must be untouched to be removed (sweep.go).
	TmpSweepInterval time.Duration
	// HostTimeout (--host-timeout): a compute host whose agent has not
	// heartbeated for this long is lost and its instances are replaced
	// (0: api.DefaultHostTimeout, 10 s).
	HostTimeout time.Duration
	// RolloutTimeout (--rollout-timeout): how long a rollout of a dynamic
	// deployment may take to get its instances healthy when the request
	// gives no deadline (0: api.DefaultRolloutTimeout, 5 minutes).
	RolloutTimeout time.Duration
	// PreviewIdle (--preview-idle): a preview (non-active) version's
	// instance without a request this long stops, unless its deployment's
	// autostop says otherwise (0: sched.DefaultPreviewIdle, 15 minutes).
	PreviewIdle time.Duration
	TmpMaxAge   time.Duration
	// Limits of each listener (api, edge, metrics); see internal/httplimit.
	MaxConns      int           // --max-conns: connections open at once per listener; 0: auto (Config.limits)
	HeaderTimeout time.Duration // --header-timeout: to read a request's headers
	BodyTimeout   time.Duration // --body-timeout: to read a body; for uploads, between bytes
	IdleTimeout   time.Duration // --idle-timeout: a keep-alive connection between requests

	MaxUploads int // --max-uploads: unfinished registry upload sessions per deployment

	// Ready, if set, is called once every listener is bound, with their
	// addresses (tests bind :0).
	Ready func(apiAddr, edgeAddr string)

	// testRoles are added after the others (tests of the supervisor).
	testRoles []role
}

// Default returns the embedded-default configuration.
func Default() Config {
	return Config{
		DataDir:    "./cairn-data",
		AccessLog:  true,
		APIAddr:    "127.0.0.1:7800",
		EdgeAddr:   "127.0.0.1:7880",
		Roles:      []string{RoleAPI, RoleEdge, RoleGC, RoleSched},
		BaseDomain: "localhost",
		MaxFiles:   100_000,
		MaxBytes:   10 << 30,
		CacheBytes: 256 << 20,
		MaxPacks:   publish.DefaultMaxPacks,

		RetentionDays: 30,
		GCInterval:    time.Hour,
		GCGrace:       time.Hour,
		GCDrain:       5 * time.Second,

		TmpSweepInterval: 5 * time.Minute,
		HostTimeout:      10 * time.Second,
		TmpMaxAge:        15 * time.Minute,
		HeaderTimeout:    httplimit.DefaultHeaderTimeout,
		BodyTimeout:      httplimit.DefaultBodyTimeout,
		IdleTimeout:      httplimit.DefaultIdleTimeout,
		MaxUploads:       registry.DefaultMaxUploads,
	}
}

// Validate reports the first bad value, naming its flag.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data: must not be empty")
	}
	if c.Token != "" && len(c.Token) < token.MinSecretLen {
		return fmt.Errorf("--token (CAIRN_TOKEN): the admin token has %d characters; it needs at least %d "+
			"(leave it unset to use the token file in the data dir, generated on first start)", len(c.Token), token.MinSecretLen)
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("--roles: at least one role is needed")
	}
	for _, r := range c.Roles {
		if r != RoleAPI && r != RoleEdge && r != RoleGC && r != RoleSched {
			return fmt.Errorf("--roles: unknown role %q (known: api, edge, gc, sched)", r)
		}
	}
	if c.RetentionDays < 0 || c.RetentionDays > 3650 {
		return fmt.Errorf("--retention-days: %d is not between 0 and 3650", c.RetentionDays)
	}
	if c.GCInterval < 0 || c.GCGrace < 0 || c.GCDrain < 0 {
		return fmt.Errorf("--gc-interval, --gc-grace and --gc-drain: must not be negative")
	}
	if c.HostTimeout < 0 || c.RolloutTimeout < 0 {
		return fmt.Errorf("--host-lost-after and --rollout-timeout: must not be negative")
	}
	if c.PreviewIdle < 0 {
		return fmt.Errorf("--preview-idle: must not be negative")
	}
	if c.TmpSweepInterval <= 0 || c.TmpMaxAge <= 0 {
		return fmt.Errorf("--tmp-sweep-interval and --tmp-max-age: must be positive")
	}
	if c.MaxFiles <= 0 || c.MaxBytes <= 0 {
		return fmt.Errorf("--max-files and --max-bytes: must be positive")
	}
	if c.MaxPacks < 1 {
		return fmt.Errorf("--max-packs: must be at least 1")
	}
	if c.MaxConns < 0 || c.MaxConns > maxMaxConns {
		return fmt.Errorf("--max-conns: %d is not between 0 (auto) and %d", c.MaxConns, maxMaxConns)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--header-timeout", c.HeaderTimeout}, {"--body-timeout", c.BodyTimeout}, {"--idle-timeout", c.IdleTimeout}} {
		if d.v <= 0 || d.v > time.Hour {
			return fmt.Errorf("%s: %v is not between 0 and 1h", d.flag, d.v)
		}
	}
	if _, err := c.limits(c.listeners()); err != nil {
		return err
	}
	if c.MaxUploads < 1 || c.MaxUploads > 100_000 {
		return fmt.Errorf("--max-uploads: %d is not between 1 and 100000", c.MaxUploads)
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("--cache-bytes: must not be negative")
	}
	if c.EdgeProxyTimeout < 0 {
		return fmt.Errorf("--edge-proxy-timeout: %s is negative", c.EdgeProxyTimeout)
	}
	if strings.Contains(c.BaseDomain, "/") || c.BaseDomain == "" {
		return fmt.Errorf("--base-domain: %q is not a domain", c.BaseDomain)
	}
	if c.PublicURL != "" {
		if _, err := api.ParsePublicURL(c.PublicURL); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
	}
	return c.validateRegions()
}

// sites is where records say the edge serves them: --public-url, else
// the base domain with the edge's scheme and port: https and the TLS port
// (omitted when 443) when the edge serves TLS (--edge-tls-addr), else
// http and the plain port (omitted when 80). edgeAddr and edgeTLSAddr are
// the bound addresses when this process runs the edge, else empty (the
// flags' values are used).
func (c *Config) sites(edgeAddr, edgeTLSAddr string) *api.Sites {
	u := c.PublicURL
	if u == "" {
		u = c.defaultPublicURL(edgeAddr, edgeTLSAddr)
	}
	s, err := api.ParsePublicURL(u)
	if err != nil {
		return nil // a base domain that makes no URL: records carry none
	}
	return s
}

// defaultPublicURL derives the public edge URL when --public-url is not
// set; see sites.
func (c *Config) defaultPublicURL(edgeAddr, edgeTLSAddr string) string {
	scheme, addr, omit := "http", edgeAddr, "80"
	if addr == "" {
		addr = c.EdgeAddr
	}
	if edgeTLSAddr == "" {
		edgeTLSAddr = c.EdgeTLSAddr
	}
	if edgeTLSAddr != "" {
		scheme, addr, omit = "https", edgeTLSAddr, "443"
	}
	host := c.BaseDomain
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != omit && port != "0" {
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host
}

// listeners counts the listeners c opens: metrics, edge, api, edge TLS.
func (c *Config) listeners() int {
	n := 0
	for _, on := range []bool{c.MetricsAddr != "", c.HasRole(RoleEdge), c.HasRole(RoleAPI), c.HasRole(RoleEdge) && c.EdgeTLSAddr != ""} {
		if on {
			n++
		}
	}
	return n
}

// HasRole reports whether role is among c.Roles.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}
