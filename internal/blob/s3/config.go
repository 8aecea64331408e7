package s3

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

const (
	minPartSize = 5 << 20 // S3's minimum for every part but the last
	// DefaultPartSize is the multipart part size: a Put holds at most about
	// three parts in memory whatever the blob's size.
	DefaultPartSize = 16 << 20
	// DefaultAttempts is how often one request is tried before giving up.
	DefaultAttempts = 4
	// DefaultBackoff is the first retry's maximum (jittered) wait; it doubles
	// per retry up to 8 times its value.
	DefaultBackoff = 200 * time.Millisecond
	// DefaultTimeout bounds each wait for progress: sending a request body,
	// the response headers, any single read of a response body.
	DefaultTimeout = time.Minute
	defaultAWS     = "https://s3.amazonaws.com"
)

// config is what New is built from: the parsed URL, then the Options.
type config struct {
	bucket, prefix   string
	endpoint         string // scheme://host, for messages
	host             string
	secure           bool
	region           string
	lookup           minio.BucketLookupType
	partSize         int64
	attempts         int
	backoff, timeout time.Duration
	log              *slog.Logger
}

// Option changes a Store's defaults.
type Option func(*config)

// WithPartSize sets the multipart part size (at least 5 MiB, S3's minimum).
// Blobs up to this size are sent in one request.
func WithPartSize(n int64) Option { return func(c *config) { c.partSize = n } }

// WithRetry sets how often a request is tried (at least 1) and the first
// retry's maximum wait.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(c *config) { c.attempts, c.backoff = attempts, backoff }
}

// WithTimeout bounds each wait for progress (sending a request body, the
// response headers, each read of a response body); a request that stalls
// longer fails and may be retried. Server-side copies must answer within it.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger sets where retries and failed clean-ups are logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// parseURL parses s3://BUCKET[/PREFIX]?endpoint=…&region=…&path-style=….
func parseURL(raw string) (config, error) {
	bad := func(format string, args ...any) (config, error) {
		return config{}, fmt.Errorf("blob/s3: bad URL: "+format+" (want s3://BUCKET[/PREFIX]?endpoint=…&region=…)", args...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%v", errors.Unwrap(err)) // the url.Error would quote raw whole
	}
	switch {
	case u.Scheme != "s3":
		return bad("scheme %q is not s3", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return bad("missing bucket name")
	case u.User != nil:
		return bad("credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return bad("bucket name %q has a port; the server goes in ?endpoint=", u.Host)
	case u.Fragment != "":
		return bad("unexpected fragment %q", u.Fragment)
	}
	if err := s3utils.CheckValidBucketNameStrict(u.Host); err != nil {
		return bad("bucket name %q: %v", u.Host, err)
	}
	c := config{
		bucket: u.Host, partSize: DefaultPartSize, attempts: DefaultAttempts,
		backoff: DefaultBackoff, timeout: DefaultTimeout, log: slog.New(slog.DiscardHandler),
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return bad("prefix %q has an empty, . or .. segment", p)
			}
		}
		c.prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return bad("parameter %q given %d times", k, len(v))
		}
		switch k {
		case "endpoint", "region", "path-style":
		default:
			return bad("unknown parameter %q", k)
		}
	}
	endpoint, custom := q.Get("endpoint"), q.Has("endpoint")
	if !custom {
		endpoint = defaultAWS
	}
	c.region = cmp.Or(q.Get("region"), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	if c.region == "" && custom {
		c.region = "us-east-1" // custom servers rarely care; saves a location lookup
	}
	e, err := url.Parse(endpoint)
	if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" ||
		e.User != nil || strings.Trim(e.Path, "/") != "" || e.RawQuery != "" || e.Fragment != "" {
		return bad("endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", endpoint)
	}
	c.endpoint, c.host, c.secure = e.Scheme+"://"+e.Host, e.Host, e.Scheme == "https"
	if custom {
		c.lookup = minio.BucketLookupPath
	}
	if ps := q.Get("path-style"); ps != "" {
		on, err := strconv.ParseBool(ps)
		if err != nil {
			return bad("path-style=%q: want true or false", ps)
		}
		c.lookup = minio.BucketLookupDNS
		if on {
			c.lookup = minio.BucketLookupPath
		}
	}
	return c, nil
}

// check validates the options.
func (c *config) check() error {
	switch {
	case c.partSize < minPartSize:
		return fmt.Errorf("blob/s3: part size %d is below S3's minimum of %d", c.partSize, minPartSize)
	case c.attempts < 1:
		return fmt.Errorf("blob/s3: %d attempts: want at least 1", c.attempts)
	case c.backoff < 0 || c.timeout <= 0:
		return fmt.Errorf("blob/s3: backoff %v, timeout %v: want backoff >= 0 and timeout > 0", c.backoff, c.timeout)
	case c.log == nil:
		c.log = slog.New(slog.DiscardHandler)
	}
	return nil
}
