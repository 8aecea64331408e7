package siterules

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// HeaderRule is one block of _headers: a path pattern, then indented
// `Name: value` lines.
type HeaderRule struct {
	Line    int
	Path    string
	Headers []Header

	path pattern
}

// Header is one header a rule sets; values of one name are joined by ", ".
type Header struct {
	Name  string // canonical form
	Value string

	vals []string // []string{Value}, shared by responses (never appended to)
}

// Reserved lists the headers a site cannot set, with the reason, in
// canonical form: hop-by-hop headers belong to one connection, and the
// others describe the representation cairn sends (its length, coding,
// validators, ranges) or cairn's own routing, which the edge owns.
var Reserved = map[string]string{
	"Connection":          "hop-by-hop",
	"Keep-Alive":          "hop-by-hop",
	"Proxy-Connection":    "hop-by-hop",
	"Proxy-Authenticate":  "hop-by-hop",
	"Proxy-Authorization": "hop-by-hop",
	"Te":                  "hop-by-hop",
	"Trailer":             "hop-by-hop",
	"Transfer-Encoding":   "hop-by-hop",
	"Upgrade":             "hop-by-hop",
	"Content-Length":      "set by cairn from the representation sent",
	"Content-Encoding":    "set by cairn from the representation sent",
	"Content-Range":       "set by cairn for range requests",
	"Accept-Ranges":       "set by cairn for range requests",
	"Etag":                "cairn's validator (the content hash)",
	"Last-Modified":       "cairn validates with ETag only",
	"Vary":                "set by cairn for content negotiation",
	"Date":                "set by the HTTP server",
	"Age":                 "set by caches",
	"Location":            "set by _redirects rules",
	"Status":              "not a header",
	"Basic-Auth":          "Netlify's password protection is not supported",
}

const reservedPrefix = "X-Cairn-"

// parseHeaders parses _headers. Every refused line is reported as a
// *LineError (a refused path line skips its block); the other rules are
// returned.
func parseHeaders(data []byte) ([]HeaderRule, []error) {
	var out []HeaderRule
	var errs []error
	bad := func(n int, msg string) { errs = append(errs, &LineError{File: HeadersFile, Line: n, Msg: msg}) }
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	n := 0
	cur := -1 // index in out of the block being read; -1: none, -2: a refused block
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#':
			continue
		case !validText(line):
			bad(n, "control characters or invalid UTF-8")
			continue
		case raw[0] != ' ' && raw[0] != '\t': // a path line
			if len(out) == MaxRules {
				bad(n, "more than "+strconv.Itoa(MaxRules)+" rules")
				return out, errs
			}
			if strings.Contains(line, "://") {
				bad(n, "absolute URLs (a scheme and host) are not supported; write a path starting with /")
				cur = -2
				continue
			}
			p, msg := parsePattern(line)
			if msg != "" {
				bad(n, "path "+strconv.Quote(line)+": "+msg)
				cur = -2
				continue
			}
			out = append(out, HeaderRule{Line: n, Path: line, path: p})
			cur = len(out) - 1
			continue
		}
		// An indented header line.
		switch {
		case cur == -1:
			bad(n, "a header line before any path line")
			continue
		case cur == -2:
			continue // its path was refused
		case line[0] == '!':
			bad(n, "detaching headers (! Name) is not supported")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			bad(n, "want `Name: value`")
			continue
		}
		name = http.CanonicalHeaderKey(name)
		if why, ok := Reserved[name]; ok {
			bad(n, "a site cannot set "+name+" ("+why+")")
			continue
		}
		if strings.HasPrefix(name, reservedPrefix) {
			bad(n, "a site cannot set "+name+" (cairn's own X-Cairn- headers)")
			continue
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			bad(n, "invalid value of "+name)
			continue
		}
		r := &out[cur]
		merged := false
		for i := range r.Headers {
			if h := &r.Headers[i]; h.Name == name {
				h.Value += ", " + value
				h.vals = []string{h.Value}
				merged = true
			}
		}
		if !merged {
			r.Headers = append(r.Headers, Header{Name: name, Value: value, vals: []string{value}})
		}
	}
	if err := sc.Err(); err != nil {
		bad(n+1, "line longer than "+strconv.Itoa(maxLine)+" bytes")
	}
	return out, errs
}
