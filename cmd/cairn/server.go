package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/server"
)

func (a *app) serverCmd() *cobra.Command {
	cfg := server.Default()
	maxBytes, cacheBytes := sizeValue(cfg.MaxBytes), sizeValue(cfg.CacheBytes)
	logFormat := choiceValue{value: "auto", choices: []string{"auto", "text", "json"}}
	logLevel := choiceValue{value: "info", choices: []string{"debug", "info", "warn", "error"}}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API, edge and gc roles (all of them, or those given by --roles)",
		Long: "Run cairn's server roles in one process. Every flag has a CAIRN_* environment\n" +
			"twin; a flag given on the command line wins over its variable.\n" +
			"--data (CAIRN_DATA) is the data dir and --token (CAIRN_TOKEN) the bootstrap admin\n" +
			"token, at least 32 characters (default: generated on first start and stored in\n" +
			"the data dir). More tokens, with scopes: cairn token create.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.DataDir, cfg.Token = a.data, strings.TrimSpace(a.token)
			cfg.MaxBytes, cfg.CacheBytes = int64(maxBytes), int64(cacheBytes)
			cfg.Roles = trimAll(cfg.Roles)
			if err := cfg.Validate(); err != nil {
				return a.blameConfig(err)
			}
			cfg.Logger = a.logger(logFormat.value, logLevel.value)
			if a.stderrTTY && !a.json {
				cfg.Ready = func(api, edge string) { a.banner(cfg, api, edge) }
			}
			ctx := cmd.Context()
			err := a.runServer(ctx, cfg)
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // stopped by a signal: a clean exit
			}
			if err != nil {
				return serverError{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "address of the API and registry listener")
	f.StringVar(&cfg.EdgeAddr, "edge-addr", cfg.EdgeAddr, "address of the edge listener")
	f.StringVar(&cfg.EdgeTLSAddr, "edge-tls-addr", "", "address of the edge's TLS listener, e.g. :443 in production (default: none);\n"+
		"certificates come from ACME (--acme-ca), on demand, for registered domains only")
	f.BoolVar(&cfg.EdgeProxyAllowPrivate, "edge-proxy-allow-private", false, "let sites' proxy rules (_redirects, 200 to an external URL) reach loopback, private\n"+
		"and link-local addresses (default: public addresses only)")
	f.DurationVar(&cfg.EdgeProxyTimeout, "edge-proxy-timeout", 0, "most time the edge waits for the response headers of a site's proxy target (default 30s)")
	f.StringVar(&cfg.ACMECA, "acme-ca", "", "ACME directory URL of the certificate authority (default: Let's Encrypt)")
	f.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact email of the ACME account")
	f.StringVar(&cfg.ACMERoot, "acme-root", "", "PEM file of root certificates trusted for --acme-ca (e.g. a test CA's)")
	f.StringVar(&cfg.Database, "database", "", "metadata database URL, e.g. postgres://… (default: SQLite in the data dir)")
	f.StringVar(&cfg.Blobs, "blobs", "", "release store URL, e.g. s3://bucket?endpoint=… (default: files in the data dir);\n"+
		"regions: NAME=URL,NAME=URL,…, the first is the primary")
	f.StringVar(&cfg.Region, "region", "", "region of --blobs this process reads from first (default: the primary)")
	f.DurationVar(&cfg.ReplicaRetry, "replica-retry", 0, "longest wait between tries of a failed copy to a region (default 5m)")
	f.StringSliceVar(&cfg.Roles, "roles", cfg.Roles, "roles to run: api, edge, gc, sched")
	f.StringVar(&cfg.BaseDomain, "base-domain", cfg.BaseDomain, "the edge serves {name}.{base-domain} and {name}--v{N}.{base-domain}")
	f.StringVar(&cfg.PublicURL, "public-url", "", "the edge as users reach it, e.g. https://sites.example.com: records' url and preview_url\n"+
		"are made from it (default http://{base-domain}:{edge port}, or https://{base-domain}:{TLS port} with\n"+
		"--edge-tls-addr; the port is left out when it is 80 or 443)")
	f.Int64Var(&cfg.MaxFiles, "max-files", cfg.MaxFiles, "most entries in one upload")
	f.Var(&maxBytes, "max-bytes", "most uncompressed bytes in one upload (e.g. 10GiB)")
	f.Var(&cacheBytes, "cache-bytes", "size of the edge's hot-file cache (e.g. 256MiB)")
	f.IntVar(&cfg.MaxPacks, "max-packs", cfg.MaxPacks, "publishes that pack and store their release at once; others wait their turn")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "also serve Prometheus metrics (GET /metrics) and the probes (/healthz, /readyz)\n"+
		"on this address, e.g. for --roles edge (the API listener always serves them)")
	f.BoolVar(&cfg.MetricsToken, "metrics-token-required", false, "GET /metrics needs a token with the read or admin scope (the probes stay open)")
	f.IntVar(&cfg.RetentionDays, "retention-days", cfg.RetentionDays, "retention_days of deployments created without one (0: collectable once archived)")
	f.DurationVar(&cfg.GCInterval, "gc-interval", cfg.GCInterval, "time between garbage collections of the gc role (0 disables them)")
	f.DurationVar(&cfg.GCGrace, "gc-grace", cfg.GCGrace, "how long a release stays marked before it is collected; keep it above the 10m lease")
	f.DurationVar(&cfg.GCDrain, "gc-drain", cfg.GCDrain, "wait between committing a collection and deleting its bytes")
	f.DurationVar(&cfg.TmpSweepInterval, "tmp-sweep-interval", cfg.TmpSweepInterval, "how often temporary files left by interrupted blob writes are swept")
	f.DurationVar(&cfg.HostTimeout, "host-lost-after", cfg.HostTimeout, "a compute host whose agent is silent this long is lost and its instances are replaced")
	f.DurationVar(&cfg.HostTimeout, "host-timeout", cfg.HostTimeout, "the former name of --host-lost-after")
	f.MarkHidden("host-timeout")
	f.DurationVar(&cfg.RolloutTimeout, "rollout-timeout", 0, "how long a rollout may take to get its instances healthy when activate or rollback gives no deadline (default 5m)")
	f.DurationVar(&cfg.PreviewIdle, "preview-idle", 0, "sched role: how long a preview host's instance (an old version woken by a request) runs without a request, when its deployment sets no autostop (default 15m)")
	f.DurationVar(&cfg.TmpMaxAge, "tmp-max-age", cfg.TmpMaxAge, "how long a temporary file must be untouched before a sweep removes it")
	f.IntVar(&cfg.MaxConns, "max-conns", 0, "connections open at once on each listener; more are answered 503 and closed\n"+
		"(default 0: 4096, or fewer so that every listener fits the open-file limit)")
	f.DurationVar(&cfg.HeaderTimeout, "header-timeout", cfg.HeaderTimeout, "most time a client may take to send a request's headers")
	f.DurationVar(&cfg.BodyTimeout, "body-timeout", cfg.BodyTimeout, "most time a request body may take to arrive; for uploads (publish, registry blobs)\n"+
		"the most time without a byte arriving")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "most time a keep-alive connection may wait for its next request")
	f.IntVar(&cfg.MaxUploads, "max-uploads", cfg.MaxUploads, "unfinished registry upload sessions per deployment; one more answers 429 TOOMANYREQUESTS")
	f.Var(&logFormat, "log-format", "log format: auto (text on a terminal, else json), text or json")
	f.Var(&logLevel, "log-level", "log level: debug, info, warn or error")
	f.BoolVar(&cfg.AccessLog, "access-log", cfg.AccessLog, "log one line per request on every listener (at info level)")
	bindEnv(f, "api-addr", "CAIRN_API_ADDR", "edge-addr", "CAIRN_EDGE_ADDR", "edge-tls-addr", "CAIRN_EDGE_TLS_ADDR",
		"edge-proxy-allow-private", "CAIRN_EDGE_PROXY_ALLOW_PRIVATE", "edge-proxy-timeout", "CAIRN_EDGE_PROXY_TIMEOUT",
		"acme-ca", "CAIRN_ACME_CA", "acme-email", "CAIRN_ACME_EMAIL", "acme-root", "CAIRN_ACME_ROOT",
		"database", "CAIRN_DATABASE",
		"blobs", "CAIRN_BLOBS", "roles", "CAIRN_ROLES", "base-domain", "CAIRN_BASE_DOMAIN", "public-url", "CAIRN_PUBLIC_URL",
		"max-files", "CAIRN_MAX_FILES", "max-bytes", "CAIRN_MAX_BYTES", "cache-bytes", "CAIRN_CACHE_BYTES",
		"max-packs", "CAIRN_MAX_PACKS", "metrics-addr", "CAIRN_METRICS_ADDR",
		"metrics-token-required", "CAIRN_METRICS_TOKEN_REQUIRED",
		"log-format", "CAIRN_LOG_FORMAT", "log-level", "CAIRN_LOG_LEVEL", "access-log", "CAIRN_ACCESS_LOG",
		"retention-days", "CAIRN_RETENTION_DAYS", "gc-interval", "CAIRN_GC_INTERVAL", "gc-grace", "CAIRN_GC_GRACE",
		"gc-drain", "CAIRN_GC_DRAIN", "tmp-sweep-interval", "CAIRN_TMP_SWEEP_INTERVAL",
		"tmp-max-age", "CAIRN_TMP_MAX_AGE", "region", "CAIRN_REGION", "replica-retry", "CAIRN_REPLICA_RETRY",
		"max-conns", "CAIRN_MAX_CONNS", "header-timeout", "CAIRN_HEADER_TIMEOUT", "body-timeout", "CAIRN_BODY_TIMEOUT",
		"idle-timeout", "CAIRN_IDLE_TIMEOUT", "max-uploads", "CAIRN_MAX_UPLOADS",
		"host-lost-after", "CAIRN_HOST_LOST_AFTER", "rollout-timeout", "CAIRN_ROLLOUT_TIMEOUT",
		"preview-idle", "CAIRN_PREVIEW_IDLE")
	return cmd
}

// logger writes to stderr: text on a terminal, JSON otherwise (or as asked).
func (a *app) logger(format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // checked by choiceValue
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" || (format == "auto" && (!a.stderrTTY || a.json)) {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

func trimAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// choiceValue is a string flag limited to a few values.
type choiceValue struct {
	value   string
	choices []string
}

func (c *choiceValue) String() string { return c.value }
func (c *choiceValue) Type() string   { return "string" }
func (c *choiceValue) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.choices, ", "))
}

// banner tells a person at a terminal where the server is and what to do
// next, once every listener is bound.
func (a *app) banner(cfg server.Config, api, edge string) {
	w := a.stderr
	fmt.Fprintf(w, "\ncairn is up (data %s)\n", cfg.DataDir)
	if api != "" {
		fmt.Fprintf(w, "  API   http://%s   token in %s (the CLI reads it)\n", api, filepath.Join(cfg.DataDir, server.TokenFile))
	}
	if edge != "" {
		port := ""
		if _, p, err := net.SplitHostPort(edge); err == nil && p != "80" {
			port = ":" + p
		}
		fmt.Fprintf(w, "  edge  http://NAME.%s%s/  (curl -H 'Host: NAME.%s' http://%s/)\n", cfg.BaseDomain, port, cfg.BaseDomain, edge)
	}
	if api != "" {
		fmt.Fprintf(w, "next: cairn publish ./site --deployment demo\n\n")
	}
}
