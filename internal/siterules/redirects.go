package siterules

import (
	"bufio"
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redirect is one rule of _redirects: `from [key=value…] to [status][!]`.
type Redirect struct {
	Line   int
	From   string
	To     string
	Status int  // 301 (default), 302, 303, 307, 308; 200: rewrite; 404: not-found page
	Force  bool // "!": the rule applies even where a file exists
	// Proxy: a rewrite (200) to an external http(s) URL, which the edge
	// proxies only for a deployment with proxy_rewrites on.
	Proxy bool
	Query []QueryCond

	from     pattern
	to       []part
	external bool // To is an absolute http(s) URL
	hasQuery bool // To has a query string of its own
}

// QueryCond is a query parameter a rule requires: Key must be present,
// with the value Value, or any value captured as :Capture.
type QueryCond struct {
	Key, Value, Capture string
}

// part is a literal piece of a rule's target or a reference to a value.
type part struct {
	lit, ref string
}

var statuses = map[string]int{"200": 200, "301": 301, "302": 302, "303": 303, "307": 307, "308": 308, "404": 404}

// parseRedirects parses _redirects. Every refused line is reported (and
// skipped) as a *LineError; the rules of the other lines are returned.
func parseRedirects(data []byte) ([]Redirect, []error) {
	var out []Redirect
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	n := 0
	for sc.Scan() {
		n++
		r, msg := parseRedirect(sc.Text())
		switch {
		case msg != "":
			errs = append(errs, &LineError{File: RedirectsFile, Line: n, Msg: msg})
		case r != nil:
			if len(out) == MaxRules {
				errs = append(errs, &LineError{File: RedirectsFile, Line: n, Msg: "more than " + strconv.Itoa(MaxRules) + " rules"})
				return out, errs
			}
			r.Line = n
			out = append(out, *r)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &LineError{File: RedirectsFile, Line: n + 1, Msg: "line longer than " + strconv.Itoa(maxLine) + " bytes"})
	}
	return out, errs
}

// parseRedirect parses one line; nil, "" for a blank line or a comment.
func parseRedirect(line string) (*Redirect, string) {
	if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
		line = line[:i] // a comment: the whole line, or from " #" on
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil, ""
	}
	if !validText(line) {
		return nil, "control characters or invalid UTF-8"
	}
	r := &Redirect{From: f[0]}
	if strings.Contains(r.From, "://") {
		return nil, "domain-level rules (a from with a scheme and host) are not supported"
	}
	var msg string
	if r.from, msg = parsePattern(r.From); msg != "" {
		return nil, "from " + strconv.Quote(r.From) + ": " + msg
	}
	names := append([]string(nil), r.from.names...)
	f = f[1:]
	for len(f) > 0 && isQueryCond(f[0]) {
		k, v, _ := strings.Cut(f[0], "=")
		c := QueryCond{Key: k, Value: v}
		if strings.HasPrefix(v, ":") {
			if !isName(v[1:]) || v == ":splat" {
				return nil, "bad query placeholder " + strconv.Quote(v)
			}
			c = QueryCond{Key: k, Capture: v[1:]}
			names = append(names, c.Capture)
		}
		r.Query = append(r.Query, c)
		f = f[1:]
	}
	if len(f) == 0 {
		return nil, "no target: want `from to [status][!]`"
	}
	r.To, f = f[0], f[1:]
	r.Status = 301
	if len(f) > 0 {
		s := f[0]
		r.Force = strings.HasSuffix(s, "!")
		st, ok := statuses[strings.TrimSuffix(s, "!")]
		if !ok {
			return nil, "status " + strconv.Quote(s) + ": want 200, 301, 302, 303, 307, 308 or 404, optionally followed by !"
		}
		r.Status, f = st, f[1:]
	}
	if len(f) > 0 {
		if k, _, ok := strings.Cut(f[0], "="); ok {
			return nil, "conditions such as " + k + "= (country, language, role, cookie) are not supported"
		}
		return nil, "unexpected " + strconv.Quote(f[0]) + " after the status"
	}
	switch {
	case strings.HasPrefix(r.To, "/"):
	case strings.HasPrefix(r.To, "https://") || strings.HasPrefix(r.To, "http://"):
		u, err := url.Parse(r.To)
		if err != nil || u.Host == "" {
			return nil, "target " + strconv.Quote(r.To) + " is not a valid URL"
		}
		r.external = true
		switch r.Status {
		case 200: // allowed or refused by Check's Options
			if u.User != nil {
				return nil, "proxy target " + strconv.Quote(r.To) + ": credentials in a URL are not supported"
			}
			r.Proxy = true
		case 404:
			return nil, "a 404 to an external URL is not supported; proxy with 200, or serve a page of the site"
		}
	default:
		return nil, "target " + strconv.Quote(r.To) + " must be a path starting with / or an http(s) URL"
	}
	r.to = parseTarget(r.To, names, r.from.splat)
	if r.Proxy && !fixedHost(r.To, r.to) {
		return nil, "proxy target " + strconv.Quote(r.To) + ": placeholders may be used only after the host, in the path or the query"
	}
	r.hasQuery = strings.Contains(r.To, "?")
	return r, ""
}

// fixedHost reports whether the scheme and host of the external target to
// end (at a "/" or "?") before its first placeholder, so that no request
// can choose the host a proxy rule connects to.
func fixedHost(to string, parts []part) bool {
	_, rest, _ := strings.Cut(to, "://")
	end := len(to) - len(rest) + strings.IndexAny(rest, "/?")
	if end < len(to)-len(rest) { // no path or query: the whole target is fixed
		end = len(to)
	}
	n := 0
	for _, p := range parts {
		if p.ref != "" {
			return n > end
		}
		n += len(p.lit)
	}
	return true
}

// isQueryCond tells a key=value query condition from a target.
func isQueryCond(s string) bool {
	k, _, ok := strings.Cut(s, "=")
	return ok && k != "" && !strings.HasPrefix(s, "/") && !strings.Contains(s, "://") &&
		!strings.ContainsAny(k, "?&#/")
}

// parseTarget splits a target into literals and references to the names
// captured by the rule (":splat" only if the pattern has a splat). A colon
// not followed by one of those names stays literal, as on Netlify.
func parseTarget(to string, names []string, splat bool) []part {
	var parts []part
	lit := 0
	for i := 0; i < len(to); i++ {
		if to[i] != ':' {
			continue
		}
		j := i + 1
		for j < len(to) && (to[j] == '_' || to[j] >= 'a' && to[j] <= 'z' || to[j] >= 'A' && to[j] <= 'Z' || j > i+1 && to[j] >= '0' && to[j] <= '9') {
			j++
		}
		name := to[i+1 : j]
		known := name == "splat" && splat
		for _, n := range names {
			known = known || n == name
		}
		if !known {
			continue
		}
		if lit < i {
			parts = append(parts, part{lit: to[lit:i]})
		}
		parts = append(parts, part{ref: name})
		lit = j
		i = j - 1
	}
	if lit < len(to) {
		parts = append(parts, part{lit: to[lit:]})
	}
	return parts
}

func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 && c != '\t' || c == 0x7F {
			return false
		}
	}
	return true
}
