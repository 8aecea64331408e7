package siterules

import (
	"bytes"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Rules are the compiled _redirects and _headers of one release.
// Immutable and safe for concurrent use; a nil *Rules has no rules.
type Rules struct {
	redirects []Redirect
	all       index // every redirect
	forced    index // redirects with "!"
	headers   []HeaderRule
	hix       index
	proxy     bool // some redirect is a proxy rule
}

// Parse compiles the contents of _redirects and _headers (either may be
// nil). Refused lines are skipped and returned as *LineError values, in
// file order (redirects first); the publish path refuses a release with
// any (Check), the edge serves the rest.
func Parse(redirects, headers []byte) (*Rules, []error) {
	rs, errs := parseRedirects(bytes.TrimPrefix(redirects, bom))
	hs, herrs := parseHeaders(bytes.TrimPrefix(headers, bom))
	errs = append(errs, herrs...)
	if len(rs) == 0 && len(hs) == 0 {
		return nil, errs
	}
	r := &Rules{redirects: rs, headers: hs}
	for i := range rs {
		r.all.add(int32(i), &rs[i].from)
		if rs[i].Force {
			r.forced.add(int32(i), &rs[i].from)
		}
		r.proxy = r.proxy || rs[i].Proxy
	}
	for i := range hs {
		r.hix.add(int32(i), &hs[i].path)
	}
	return r, errs
}

// bom is the UTF-8 byte order mark some editors write first.
var bom = []byte("\ufeff")

// Options are a deployment's settings that decide what Check accepts.
type Options struct {
	// Proxy allows rewrites (200) to external http(s) URLs (the
	// deployment's proxy_rewrites); without it such a rule is refused.
	Proxy bool
}

// Check parses both files strictly: nil, or an error wrapping ErrInvalid
// that names the file and the first refused line (and how many more).
func Check(redirects, headers []byte, o Options) error {
	r, errs := Parse(redirects, headers)
	if !o.Proxy && r.HasProxy() {
		errs = append(errs, r.refuseProxies()...)
		sort.SliceStable(errs, func(i, j int) bool { // file order: redirects first, by line
			a, b := errs[i].(*LineError), errs[j].(*LineError)
			return a.File == RedirectsFile && b.File != RedirectsFile || a.File == b.File && a.Line < b.Line
		})
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	le := errs[0].(*LineError)
	return &LineError{File: le.File, Line: le.Line, Msg: le.Msg + " (and " + strconv.Itoa(len(errs)-1) + " more refused lines)"}
}

// Len reports the number of redirect and header rules.
func (r *Rules) Len() (redirects, headers int) {
	if r == nil {
		return 0, 0
	}
	return len(r.redirects), len(r.headers)
}

// HasForced reports whether some redirect applies over existing files.
func (r *Rules) HasForced() bool {
	return r != nil && len(r.forced.exact)+len(r.forced.first)+len(r.forced.any) > 0
}

// HasProxy reports whether some redirect proxies to an external URL.
func (r *Rules) HasProxy() bool { return r != nil && r.proxy }

// refuseProxies: one *LineError for each proxy rule.
func (r *Rules) refuseProxies() []error {
	var errs []error
	for i := range r.redirects {
		if rule := &r.redirects[i]; rule.Proxy {
			errs = append(errs, &LineError{File: RedirectsFile, Line: rule.Line, Msg: "proxying " + strconv.Quote(rule.From) +
				" to the external URL " + strconv.Quote(rule.To) + " (status 200) is off for this deployment; " +
				"turn on proxy_rewrites (cairn deployment set NAME --proxy-rewrites) or redirect with 301, 302, 303, 307 or 308"})
		}
	}
	return errs
}

// HasRedirects reports whether there is any redirect rule.
func (r *Rules) HasRedirects() bool { return r != nil && len(r.redirects) > 0 }

// Match is what a redirect rule made of a request.
type Match struct {
	Status int
	// Path is the target within the release (decoded, cleaned) for a
	// rewrite (200), a not-found page (404) or a redirect to a path.
	Path string
	// Location is the Location header of a redirect (3xx): an escaped path
	// or an absolute URL, with its query string; for a proxy rule, the
	// URL to proxy to.
	Location string
	// Proxy: the rule rewrites (200) to the external URL Location.
	Proxy bool
	Line  int // of the rule, for logs
}

// Redirect returns the first rule in file order that matches the cleaned
// path (see Clean) and the raw query; forcedOnly limits it to rules with
// "!" (the path names an existing file, which shadows the others).
func (r *Rules) Redirect(clean, rawQuery string, forcedOnly bool) (Match, bool) {
	if r == nil {
		return Match{}, false
	}
	ix := &r.all
	if forcedOnly {
		ix = &r.forced
	}
	var (
		found   = -1
		caps    []capture
		buf     [4]capture
		query   url.Values
		queried bool
	)
	ix.each(clean, func(i int32) bool {
		rule := &r.redirects[i]
		c, ok := rule.from.match(clean, buf[:0])
		if !ok {
			return true
		}
		if len(rule.Query) > 0 {
			if !queried {
				query, _ = url.ParseQuery(rawQuery)
				queried = true
			}
			for _, q := range rule.Query {
				vs, ok := query[q.Key]
				if !ok || q.Capture == "" && vs[0] != q.Value {
					return true
				}
				if q.Capture != "" {
					c = append(c, capture{q.Capture, vs[0]})
				}
			}
		}
		found, caps = int(i), c
		return false
	})
	if found < 0 {
		return Match{}, false
	}
	return r.redirects[found].apply(caps, rawQuery), true
}

// apply builds the target of a matched rule.
func (rule *Redirect) apply(caps []capture, rawQuery string) Match {
	m := Match{Status: rule.Status, Line: rule.Line, Proxy: rule.Proxy}
	var b strings.Builder
	inQuery := false
	for _, p := range rule.to {
		if p.ref == "" {
			b.WriteString(p.lit)
			inQuery = inQuery || strings.Contains(p.lit, "?")
			continue
		}
		v := lookupCapture(caps, p.ref)
		switch {
		case inQuery:
			b.WriteString(url.QueryEscape(v))
		case rule.external || rule.Status != 200 && rule.Status != 404:
			b.WriteString(escapePath(v)) // a Location: escaped
		default:
			b.WriteString(v) // a path inside the release: decoded
		}
	}
	target := b.String()
	if (rule.Status == 200 || rule.Status == 404) && !rule.external {
		p, _, _ := strings.Cut(target, "?")
		m.Path = Clean(p)
		return m
	}
	m.Location = target
	if !rule.external {
		p, q, has := strings.Cut(target, "?")
		m.Path = Clean(unescape(p))
		if !has && len(rule.Query) == 0 && rawQuery != "" {
			q, has = rawQuery, true // the request's query string is passed on
		}
		m.Location = p
		if has {
			m.Location += "?" + q
		}
	} else if !rule.hasQuery && len(rule.Query) == 0 && rawQuery != "" {
		m.Location += "?" + rawQuery
	}
	return m
}

func lookupCapture(caps []capture, name string) string {
	for _, c := range caps {
		if c.name == name {
			return c.value
		}
	}
	return ""
}

func escapePath(v string) string { return (&url.URL{Path: v}).EscapedPath() }

func unescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// Headers sets on h the headers of every _headers rule that matches the
// cleaned path, in file order; they replace what h holds (the edge's
// defaults), and values that several rules give one name are joined by
// ", ". Reserved headers never appear in rules.
func (r *Rules) Headers(clean string, h http.Header) {
	if r == nil || len(r.headers) == 0 {
		return
	}
	var (
		buf [4]capture
		set = make([]string, 0, 8) // names set by an earlier rule of this request
	)
	r.hix.each(clean, func(i int32) bool {
		rule := &r.headers[i]
		if _, ok := rule.path.match(clean, buf[:0]); !ok {
			return true
		}
		for j := range rule.Headers {
			hd := &rule.Headers[j]
			seen := false
			for _, s := range set {
				seen = seen || s == hd.Name
			}
			if seen {
				h[hd.Name] = []string{h[hd.Name][0] + ", " + hd.Value}
				continue
			}
			h[hd.Name] = hd.vals
			set = append(set, hd.Name)
		}
		return true
	})
}
