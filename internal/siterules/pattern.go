package siterules

import (
	"path"
	"strings"
)

// pattern is a compiled path pattern: literal segments and ":name"
// placeholders (each a whole segment), optionally ending in a "*" splat
// that matches the rest of the path, nothing included.
type pattern struct {
	segs    []string // literal segments, or ":name"
	splat   bool
	literal string // the whole path when there is no placeholder and no splat
	names   []string
}

// parsePattern compiles a path pattern. It must start with "/". A trailing
// slash is ignored ("/blog/" is "/blog"), as requests are matched on their
// cleaned path.
func parsePattern(s string) (pattern, string) {
	var p pattern
	if !strings.HasPrefix(s, "/") {
		return p, "the path must start with /"
	}
	if strings.ContainsAny(s, "?#") {
		return p, "the path must not hold ? or # (write query conditions as key=value after the path)"
	}
	rest := strings.Trim(s, "/")
	if rest == "*" || strings.HasSuffix(rest, "/*") {
		p.splat = true
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, "*"), "/")
	}
	if rest != "" {
		for _, seg := range strings.Split(rest, "/") {
			switch {
			case seg == "" || seg == "." || seg == "..":
				return p, "the path has an empty, . or .. segment"
			case strings.Contains(seg, "*"):
				return p, "a splat * is supported only as the last segment (/path/*)"
			case strings.HasPrefix(seg, ":"):
				name := seg[1:]
				if !isName(name) || name == "splat" {
					return p, "bad placeholder " + seg + " (a letter, then letters, digits or _; not :splat)"
				}
				for _, n := range p.names {
					if n == name {
						return p, "placeholder " + seg + " appears twice"
					}
				}
				p.names = append(p.names, name)
			case strings.Contains(seg, ":"):
				return p, "a placeholder must be a whole segment (/:name/)"
			}
			p.segs = append(p.segs, seg)
		}
	}
	if !p.splat && len(p.names) == 0 {
		p.literal = "/" + rest
	}
	return p, ""
}

func isName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c != '_' && (c < '0' || c > '9')) {
			return false
		}
	}
	return true
}

// capture is one placeholder's value; the splat is named "splat".
type capture struct{ name, value string }

// match matches a cleaned path ("/" or "/a/b", no trailing slash) and
// appends the placeholders' values to caps.
func (p *pattern) match(clean string, caps []capture) ([]capture, bool) {
	if p.literal != "" {
		return caps, clean == p.literal
	}
	rest := clean[1:]
	for _, seg := range p.segs {
		if rest == "" {
			return caps, false
		}
		var s string
		s, rest, _ = strings.Cut(rest, "/")
		if seg[0] == ':' {
			caps = append(caps, capture{seg[1:], s})
		} else if s != seg {
			return caps, false
		}
	}
	if p.splat {
		return append(caps, capture{"splat", rest}), true
	}
	return caps, rest == ""
}

// firstSegment is the first segment of a cleaned path ("" for "/").
func firstSegment(clean string) string {
	s, _, _ := strings.Cut(clean[1:], "/")
	return s
}

// Clean is the form of a request path that rules match: cleaned, with no
// trailing slash except for the root.
func Clean(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}

// index finds the rules whose pattern may match a path: by whole path for
// literal patterns, by first segment for patterns that start with a
// literal segment, and the rest (starting with a placeholder or a splat)
// always. Lists hold rule numbers in file order.
type index struct {
	exact map[string][]int32
	first map[string][]int32
	any   []int32
}

func (ix *index) add(i int32, p *pattern) {
	switch {
	case p.literal != "":
		if ix.exact == nil {
			ix.exact = map[string][]int32{}
		}
		ix.exact[p.literal] = append(ix.exact[p.literal], i)
	case len(p.segs) > 0 && p.segs[0][0] != ':':
		if ix.first == nil {
			ix.first = map[string][]int32{}
		}
		ix.first[p.segs[0]] = append(ix.first[p.segs[0]], i)
	default:
		ix.any = append(ix.any, i)
	}
}

// each calls fn with the candidate rules of clean in file order until fn
// returns false. It does not allocate.
func (ix *index) each(clean string, fn func(i int32) bool) {
	a := ix.exact[clean]
	b := ix.first[firstSegment(clean)]
	c := ix.any
	for len(a)+len(b)+len(c) > 0 {
		// Take the smallest head of the three lists.
		var next int32 = -1
		var from *[]int32
		for _, l := range [...]*[]int32{&a, &b, &c} {
			if len(*l) > 0 && (next < 0 || (*l)[0] < next) {
				next, from = (*l)[0], l
			}
		}
		*from = (*from)[1:]
		if !fn(next) {
			return
		}
	}
}
