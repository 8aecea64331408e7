// Package siterules owns a static site's own rules, in the files Netlify and
// Cloudflare Pages read from the root of a site: _redirects (redirects,
// rewrites and custom not-found pages, one rule per line) and _headers
// (response headers by path pattern). It parses them (strictly at publish
// time, leniently at the edge) and compiles them into matchers indexed by
// literal path, so that a request looks at a handful of candidate rules,
// never at every rule. docs/design.md, "Site rules", lists what is and is
// not supported.
package siterules

import (
	"errors"
	"fmt"
)

// File names read from the root of a release.
const (
	RedirectsFile = "_redirects"
	HeadersFile   = "_headers"
)

// Limits of one rules file: refused at publish time beyond them.
const (
	MaxFileBytes = 1 << 20
	MaxRules     = 10000
	maxLine      = 4096
)

// ErrInvalid is wrapped by every error about the content of a rules file;
// the API answers it 400 with the error text, which names the file and
// the line.
var ErrInvalid = errors.New("invalid site rules")

// LineError is a refused line of a rules file.
type LineError struct {
	File string // RedirectsFile or HeadersFile
	Line int    // 1-based
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg) }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *LineError) Unwrap() error { return ErrInvalid }
